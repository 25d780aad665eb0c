{#
    One row per (movie, year of rating): the additive facts of that year's ratings, so the
    movie marts read 1.6M rows instead of 25M at ml-25m (a movie x month grain would be 9.8M:
    movies are rated sparsely), and a new month of ratings rebuilds its year here instead of
    every movie's full history.
    Incremental like fct_ratings (same window, same delete-then-insert, tag ratings_window
    puts it in the same monthly partitioned Dagster step), but by whole years: the window's
    year is rebuilt whole from fct_ratings.
    rating_square_sum is there for the standard deviation: var = (Σx² - (Σx)²/n) / (n - 1).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['ratings_window'],
        tmp_relation_type=var('snowflake_tmp_relation_type'),
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where {{ ratings_window_years_predicate() }}{% endif %}"
        ],
    )
}}

with

ratings as (

    select *, {{ year_of('rated_month') }} as rated_year from {{ ref('fct_ratings') }}
    {% if is_incremental() %}
    where {{ ratings_window_years_predicate(year_of('rated_month')) }}
    {% endif %}

),

final as (

    select
        movie_id,
        rated_year,
        count(*) as ratings_count,
        sum(cast(rating as double)) as rating_sum,
        sum(cast(rating as double) * cast(rating as double)) as rating_square_sum,
        count(case when is_positive then 1 end) as positive_ratings_count,
        {% for v in rating_values() %}
        count(case when rating = {{ v }} then 1 end) as {{ rating_value_column(v) }},
        {% endfor %}
        min(rated_at) as first_rated_at,
        max(rated_at) as last_rated_at
    from ratings
    group by movie_id, rated_year

)

select * from final
