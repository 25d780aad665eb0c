{{ config(meta={'dagster': {'ref': {'name': 'fct_ratings'}}}) }}
{#
    fct_ratings holds exactly the ratings of stg_ratings: same (user, movie, rating, rated_at)
    rows, nothing missing, nothing extra. Catches a window run that left a gap, a duplicate, or a
    row deleted upstream. (The `meta.dagster.ref` tells Dagster which asset this check is on.)
#}
with fct as (
    select user_id, movie_id, rating, rated_at from {{ ref('fct_ratings') }}
),

stg as (
    select user_id, movie_id, rating, rated_at from {{ ref('stg_ratings') }}
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
