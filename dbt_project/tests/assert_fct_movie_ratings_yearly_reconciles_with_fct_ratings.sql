{{ config(meta={'dagster': {'ref': {'name': 'fct_movie_ratings_yearly'}}}) }}
{# See macros/rollup_reconciles_with_fct_ratings.sql. #}
{{ rollup_reconciles_with_fct_ratings(ref('fct_movie_ratings_yearly')) }}
