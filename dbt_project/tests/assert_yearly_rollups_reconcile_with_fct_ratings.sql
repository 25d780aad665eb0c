{{ config(meta={'dagster': {'ref': {'name': 'fct_movie_ratings_yearly'}}}) }}
{#
    For every year the run's window touches, both yearly rollups hold exactly the ratings of
    fct_ratings: the same count and sum per year. Catches a rollup year left stale by a window
    run (the marts read the rollups, not fct_ratings).
#}
with fct as (
    select {{ year_of('rated_month') }} as rated_year, count(*) as ratings_count, sum(cast(rating as double)) as rating_sum
    from {{ ref('fct_ratings') }}
    where {{ ratings_window_years_predicate(year_of('rated_month')) }}
    group by 1
),

rollups as (
    select 'fct_movie_ratings_yearly' as rollup, rated_year, sum(ratings_count) as ratings_count, sum(rating_sum) as rating_sum
    from {{ ref('fct_movie_ratings_yearly') }}
    where {{ ratings_window_years_predicate() }}
    group by rated_year
    union all
    select 'fct_user_ratings_yearly' as rollup, rated_year, sum(ratings_count) as ratings_count, sum(rating_sum) as rating_sum
    from {{ ref('fct_user_ratings_yearly') }}
    where {{ ratings_window_years_predicate() }}
    group by rated_year
),

expected as (
    select rollup_names.rollup, fct.rated_year, fct.ratings_count, fct.rating_sum
    from fct
    cross join (
        select 'fct_movie_ratings_yearly' as rollup union all select 'fct_user_ratings_yearly' as rollup
    ) as rollup_names
)

select
    coalesce(expected.rollup, rollups.rollup) as rollup,
    coalesce(expected.rated_year, rollups.rated_year) as rated_year,
    expected.ratings_count as fct_ratings_count,
    rollups.ratings_count as rollup_ratings_count
from expected
full outer join rollups
    on expected.rollup = rollups.rollup
    and expected.rated_year = rollups.rated_year
where expected.ratings_count is null
    or rollups.ratings_count is null
    or expected.ratings_count <> rollups.ratings_count
    or abs(expected.rating_sum - rollups.rating_sum) > 0.001
