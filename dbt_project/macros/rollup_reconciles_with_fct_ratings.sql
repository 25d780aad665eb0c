{#
    A singular test's body: for every year the run's window touches, the yearly rollup `rollup`
    holds exactly the ratings of fct_ratings, the same count and sum per year. Catches a rollup
    year left stale by a window run (the marts read the rollups, not fct_ratings).

    One test per rollup, each attached to its own rollup, so a run that rebuilds one rollup
    alone (declarative automation may) checks that one and is not failed by the other, which
    it did not touch. Failing rows: the year and both counts (NULL where one side has none).
#}
{% macro rollup_reconciles_with_fct_ratings(rollup) -%}
with fct as (
    select {{ year_of('rated_month') }} as rated_year, count(*) as ratings_count, sum(cast(rating as double)) as rating_sum
    from {{ ref('fct_ratings') }}
    where {{ ratings_window_years_predicate(year_of('rated_month')) }}
    group by 1
),

rolled_up as (
    select rated_year, sum(ratings_count) as ratings_count, sum(rating_sum) as rating_sum
    from {{ rollup }}
    where {{ ratings_window_years_predicate() }}
    group by rated_year
)

select
    coalesce(fct.rated_year, rolled_up.rated_year) as rated_year,
    fct.ratings_count as fct_ratings_count,
    rolled_up.ratings_count as rollup_ratings_count
from fct
full outer join rolled_up on fct.rated_year = rolled_up.rated_year
where fct.ratings_count is null
    or rolled_up.ratings_count is null
    or fct.ratings_count <> rolled_up.ratings_count
    or abs(fct.rating_sum - rolled_up.rating_sum) > 0.001
{%- endmacro %}
