{#
    Snowflake EMULATOR compatibility (fakesnow on loopback). Nothing here changes what dbt sends
    to a real Snowflake account: every override below calls dbt-snowflake's own macro unchanged
    unless `netflix_elt_on_emulator()` is true, i.e. the target is dbt-snowflake AND its host is
    a loopback address (profiles.yml: SNOWFLAKE_HOST=127.0.0.1/localhost/::1). A real account
    never has a loopback host (an empty host = derived from the account).

    What fakesnow (0.12, DuckDB underneath) cannot run, and what we send it instead:
    - TEMPORARY tables and views with a qualified name (`create temporary table db.schema.x`:
      "TEMPORARY table names can *only* use the temp catalog"). dbt creates them for incremental
      runs (fct_ratings' tmp view), snapshot staging tables and unit tests. On the emulator they
      become a transient table / an ordinary view with the same name (dbt drops the incremental
      tmp view afterwards; the snapshot staging table is dropped in `post_snapshot`).
      So fct_ratings needs no `snowflake_tmp_relation_type` var there any more.
    - MERGE's `insert (...) values (col, ...)` with unqualified source columns (snapshot merge):
      qualified as `DBT_INTERNAL_SOURCE.col`, which is also valid Snowflake.
    - explicit `begin; <dml>; commit;` around DML (dbt-snowflake wraps every merge/insert/delete
      in it): sent as the bare DML (fakesnow autocommits; a failed statement inside a BEGIN
      wedges the server until restart).
#}

{% macro netflix_elt_on_emulator() -%}
    {%- if target.type != 'snowflake' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set host = (target.get('host') or env_var('SNOWFLAKE_HOST', '') or '') | string | trim | lower -%}
    {{ return(host in ('127.0.0.1', 'localhost', '::1', '[::1]')) }}
{%- endmacro %}


{# -- temporary tables (snapshot staging, unit tests, incremental tmp tables) -> transient -- #}
{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {%- if netflix_elt_on_emulator() -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_temporary_sql(relation, compiled_code) }}
    {%- endif -%}
{%- endmacro %}


{# -- temporary views (the incremental tmp view of fct_ratings) -> ordinary views -- #}
{% macro snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary=False) -%}
    {%- if netflix_elt_on_emulator() -%}
        {{ dbt.snowflake__create_view_as_with_temp_flag(relation, sql, False) }}
    {%- else -%}
        {{ dbt.snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary) }}
    {%- endif -%}
{%- endmacro %}


{# -- begin; dml; commit; -> dml -- #}
{% macro snowflake_dml_explicit_transaction(dml) -%}
    {%- if netflix_elt_on_emulator() -%}
        {% do return(dml) %}
    {%- else -%}
        {% do return(dbt.snowflake_dml_explicit_transaction(dml)) %}
    {%- endif -%}
{%- endmacro %}


{# -- snapshot MERGE: qualify the inserted values with the source alias -- #}
{% macro snowflake__snapshot_merge_sql(target, source, insert_cols) -%}
    {%- if netflix_elt_on_emulator() -%}
        {%- set insert_cols_csv = insert_cols | join(', ') -%}
        {%- set source_cols_csv = [] -%}
        {%- for col in insert_cols -%}
            {%- do source_cols_csv.append('DBT_INTERNAL_SOURCE.' ~ col) -%}
        {%- endfor -%}
        {%- set dml = default__snapshot_merge_sql(target, source, insert_cols) -%}
        {%- set needle = 'values (' ~ insert_cols_csv ~ ')' -%}
        {%- if needle not in dml -%}
            {{ exceptions.raise_compiler_error("emulator_compat: snapshot merge has no `" ~ needle ~ "` to qualify") }}
        {%- endif -%}
        {%- set dml = dml.replace(needle, 'values (' ~ source_cols_csv | join(', ') ~ ')') -%}
        {% do return(dml) %}
    {%- else -%}
        {% do return(dbt.snowflake__snapshot_merge_sql(target, source, insert_cols)) %}
    {%- endif -%}
{%- endmacro %}


{# -- drop the snapshot staging table that is a transient table on the emulator -- #}
{% macro snowflake__post_snapshot(staging_relation) -%}
    {%- if netflix_elt_on_emulator() -%}
        {% do adapter.drop_relation(staging_relation) %}
    {%- else -%}
        {{ return(dbt.default__post_snapshot(staging_relation)) }}
    {%- endif -%}
{%- endmacro %}


{# -- unit-test fixtures: fakesnow's DESCRIBE reports some DuckDB type names (array_size() is a
    UBIGINT there), which are not Snowflake types; cast fixture values to NUMBER instead -- #}
{% macro snowflake__safe_cast(field, type) -%}
    {%- if netflix_elt_on_emulator() and (type | upper) in ('UBIGINT', 'UINTEGER', 'USMALLINT', 'UTINYINT', 'HUGEINT', 'UHUGEINT', 'BIGINT', 'INTEGER') -%}
        {{ dbt.snowflake__safe_cast(field, 'NUMBER(38, 0)') }}
    {%- else -%}
        {{ dbt.snowflake__safe_cast(field, type) }}
    {%- endif -%}
{%- endmacro %}
