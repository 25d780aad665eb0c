{{ config(meta={'dagster': {'ref': {'name': 'fct_ratings'}}}) }}
{#
    Within the window this run processed, fct_ratings holds exactly the ratings of stg_ratings:
    same (user, movie, rating, rated_at) rows, nothing missing, nothing extra. Catches a window
    run that left a gap, a duplicate, or a row deleted upstream.

    Scoped to the run's window [start, end) (macros/ratings_window.sql) because fct_ratings is
    partitioned by month: a run of one month answers for that month, and other months may be
    legitimately behind their raw data until their own run (the defaults cover all time, so a
    plain `dbt build` checks everything). The `meta.dagster.ref` tells Dagster which asset this
    check is on.
#}

with fct as (
    select user_id, movie_id, rating, rated_at from {{ ref('fct_ratings') }} where {{ ratings_window_predicate() }}
),

stg as (
    select user_id, movie_id, rating, rated_at from {{ ref('stg_ratings') }} where {{ ratings_window_predicate() }}
),

missing as (
    select 'missing_in_fct' as problem, * from (select * from stg except select * from fct) as m
),

extra as (
    select 'extra_in_fct' as problem, * from (select * from fct except select * from stg) as e
)

select * from missing
union all
select * from extra
