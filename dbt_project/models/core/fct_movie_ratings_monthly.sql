{#
    One row per (movie, month of rating): the additive facts of that month's ratings, so the
    movie marts read ~1/10 of the rows of fct_ratings, and a new month of ratings rebuilds one
    month here instead of every movie's full history.
    Incremental like fct_ratings (same window, same delete-then-insert, tag ratings_window
    puts it in the same monthly partitioned Dagster step), but by whole months: a window that
    cuts a month rebuilds that month whole.
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
            "{% if is_incremental() %}delete from {{ this }} where {{ ratings_window_months_predicate() }}{% endif %}"
        ],
    )
}}

with

ratings as (

    select * from {{ ref('fct_ratings') }}
    {% if is_incremental() %}
    where {{ ratings_window_months_predicate() }}
    {% endif %}

),

final as (

    select
        movie_id,
        rated_month,
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
    group by movie_id, rated_month

)

select * from final
