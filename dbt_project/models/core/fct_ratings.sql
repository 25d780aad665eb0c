{#
    Incremental by an explicit, half-open time window [start, end) (macros/ratings_window.sql).
    Incremental run: the pre-hook deletes the window's rows from this table, then the model
    inserts (append) the window's rows from staging. Delete-then-insert of a whole window is
    idempotent: re-running a window, running windows out of order, or re-running after a
    corrected delivery gives what a full refresh gives, and rows removed upstream disappear.
    First build / --full-refresh: the window is ignored and all history is built.
    `append` + a pre-hook works the same on dbt-duckdb and dbt-snowflake.
    tmp_relation_type (dbt-snowflake only): 'view' (a temporary view, dbt-snowflake's own default
    for append); a Snowflake emulator that cannot create temporary relations (fakesnow) is handled by
    macros/emulator_compat.sql on loopback hosts; no var needed.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['ratings_window'],
        tmp_relation_type=var('snowflake_tmp_relation_type'),
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where {{ ratings_window_predicate() }}{% endif %}"
        ],
    )
}}

with

ratings as (

    select * from {{ ref('stg_ratings') }}
    {% if is_incremental() %}
    where {{ ratings_window_epoch_predicate() }}  {# the window's rows of raw.ratings only #}
    {% endif %}

),

final as (

    select
        user_id,
        movie_id,
        rating,
        rated_at,
        cast({{ dbt.date_trunc('day', 'rated_at') }} as date) as rated_date,
        cast({{ dbt.date_trunc('month', 'rated_at') }} as date) as rated_month,
        rating >= 4.0 as is_positive,
        source_object,
        loaded_at
    from ratings

)

select * from final
