{{ config(meta={'dagster': {'ref': {'name': 'fct_movie_ratings_monthly'}}}) }}
{#
    For every month the run's window touches, both monthly rollups hold exactly the ratings
    of fct_ratings: the same count and sum per month. Catches a rollup month left stale by a
    window run (the marts read the rollups, not fct_ratings).
#}
with fct as (
    select rated_month, count(*) as ratings_count, sum(cast(rating as double)) as rating_sum
    from {{ ref('fct_ratings') }}
    where {{ ratings_window_months_predicate() }}
    group by rated_month
),

rollups as (
    select 'fct_movie_ratings_monthly' as rollup, rated_month, sum(ratings_count) as ratings_count, sum(rating_sum) as rating_sum
    from {{ ref('fct_movie_ratings_monthly') }}
    where {{ ratings_window_months_predicate() }}
    group by rated_month
    union all
    select 'fct_user_ratings_monthly' as rollup, rated_month, sum(ratings_count) as ratings_count, sum(rating_sum) as rating_sum
    from {{ ref('fct_user_ratings_monthly') }}
    where {{ ratings_window_months_predicate() }}
    group by rated_month
),

expected as (
    select rollup_names.rollup, fct.rated_month, fct.ratings_count, fct.rating_sum
    from fct
    cross join (
        select 'fct_movie_ratings_monthly' as rollup union all select 'fct_user_ratings_monthly' as rollup
    ) as rollup_names
)

select
    coalesce(expected.rollup, rollups.rollup) as rollup,
    coalesce(expected.rated_month, rollups.rated_month) as rated_month,
    expected.ratings_count as fct_ratings_count,
    rollups.ratings_count as rollup_ratings_count
from expected
full outer join rollups
    on expected.rollup = rollups.rollup
    and expected.rated_month = rollups.rated_month
where expected.ratings_count is null
    or rollups.ratings_count is null
    or expected.ratings_count <> rollups.ratings_count
    or abs(expected.rating_sum - rollups.rating_sum) > 0.001
