{{ config(meta={'dagster': {'ref': {'name': 'fct_user_ratings_yearly'}}}) }}
{# See macros/rollup_reconciles_with_fct_ratings.sql. #}
{{ rollup_reconciles_with_fct_ratings(ref('fct_user_ratings_yearly')) }}
