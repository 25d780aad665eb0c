{#
    The only place where DuckDB and Snowflake SQL differ. Models call these macros; each one
    dispatches to `<adapter>__<name>` and falls back to `default__<name>`.
#}

{# ---- epoch seconds (UTC) -> timestamp without time zone, holding UTC wall-clock time ---- #}
{% macro epoch_to_timestamp(epoch_seconds) -%}
    {{ return(adapter.dispatch('epoch_to_timestamp', 'netflix_elt')(epoch_seconds)) }}
{%- endmacro %}

{% macro default__epoch_to_timestamp(epoch_seconds) -%}
    {{ dbt.dateadd('second', epoch_seconds, "cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}

{% macro duckdb__epoch_to_timestamp(epoch_seconds) -%}
    make_timestamp(cast({{ epoch_seconds }} as bigint) * 1000000)
{%- endmacro %}

{% macro snowflake__epoch_to_timestamp(epoch_seconds) -%}
    to_timestamp_ntz(cast({{ epoch_seconds }} as number(38, 0)), 0)
{%- endmacro %}


{# ---- 'a|b|c' -> array of strings; NULL -> empty array ---- #}
{% macro split_to_array(string_expr, delimiter) -%}
    {{ return(adapter.dispatch('split_to_array', 'netflix_elt')(string_expr, delimiter)) }}
{%- endmacro %}

{% macro default__split_to_array(string_expr, delimiter) -%}
    coalesce(string_to_array({{ string_expr }}, '{{ delimiter }}'), array[]::varchar[])
{%- endmacro %}

{% macro duckdb__split_to_array(string_expr, delimiter) -%}
    coalesce(string_split({{ string_expr }}, '{{ delimiter }}'), cast([] as varchar[]))
{%- endmacro %}

{% macro snowflake__split_to_array(string_expr, delimiter) -%}
    coalesce(split({{ string_expr }}, '{{ delimiter }}'), array_construct())
{%- endmacro %}


{# ---- number of elements of an array ---- #}
{% macro array_length(array_expr) -%}
    {{ return(adapter.dispatch('array_length', 'netflix_elt')(array_expr)) }}
{%- endmacro %}

{% macro default__array_length(array_expr) -%}
    cardinality({{ array_expr }})
{%- endmacro %}

{% macro duckdb__array_length(array_expr) -%}
    len({{ array_expr }})
{%- endmacro %}

{% macro snowflake__array_length(array_expr) -%}
    array_size({{ array_expr }})
{%- endmacro %}


{# ---- is a (string) value an element of an array ---- #}
{% macro array_contains(array_expr, value_expr) -%}
    {{ return(adapter.dispatch('array_contains', 'netflix_elt')(array_expr, value_expr)) }}
{%- endmacro %}

{% macro default__array_contains(array_expr, value_expr) -%}
    ({{ value_expr }} = any({{ array_expr }}))
{%- endmacro %}

{% macro duckdb__array_contains(array_expr, value_expr) -%}
    list_contains({{ array_expr }}, {{ value_expr }})
{%- endmacro %}

{% macro snowflake__array_contains(array_expr, value_expr) -%}
    array_contains(cast({{ value_expr }} as variant), {{ array_expr }})
{%- endmacro %}


{# ---- aggregate values into an array, in a given order ---- #}
{% macro array_agg_ordered(value_expr, order_by_expr) -%}
    {{ return(adapter.dispatch('array_agg_ordered', 'netflix_elt')(value_expr, order_by_expr)) }}
{%- endmacro %}

{% macro default__array_agg_ordered(value_expr, order_by_expr) -%}
    array_agg({{ value_expr }} order by {{ order_by_expr }})
{%- endmacro %}

{% macro duckdb__array_agg_ordered(value_expr, order_by_expr) -%}
    list({{ value_expr }} order by {{ order_by_expr }})
{%- endmacro %}

{% macro snowflake__array_agg_ordered(value_expr, order_by_expr) -%}
    array_agg({{ value_expr }}) within group (order by {{ order_by_expr }})
{%- endmacro %}


{# ---- MovieLens titles: the release year at the end of the (trimmed) title ----
    Matches a trailing "(YYYY)" or a trailing year range "(YYYY-YYYY)" / "(YYYY–YYYY)" (en dash,
    as in 'Death Note: Desu nôto (2006–2007)'); for a range the FIRST year is the release year.
    No trailing parenthesised year -> NULL. Only the last parentheses count, so
    'Assembly (Ji jie hao) (2007)' -> 2007. Bracket expressions instead of backslash escapes keep
    the pattern identical in RE2 (DuckDB) and POSIX ERE (Snowflake).
#}
{% macro release_year_pattern() -%}
    [(]([0-9]{4})((–|-)[0-9]{4})?[)]$
{%- endmacro %}

{% macro extract_release_year(title_expr) -%}
    {{ return(adapter.dispatch('extract_release_year', 'netflix_elt')(title_expr)) }}
{%- endmacro %}

{% macro default__extract_release_year(title_expr) -%}
    cast(substring({{ title_expr }} from '{{ release_year_pattern() }}') as integer)
{%- endmacro %}

{% macro duckdb__extract_release_year(title_expr) -%}
    cast(nullif(regexp_extract({{ title_expr }}, '{{ release_year_pattern() }}', 1), '') as integer)
{%- endmacro %}

{% macro snowflake__extract_release_year(title_expr) -%}
    cast(regexp_substr({{ title_expr }}, '{{ release_year_pattern() }}', 1, 1, 'e', 1) as integer)
{%- endmacro %}


{# ---- the title without its trailing release year (same pattern as above), trimmed ---- #}
{% macro strip_release_year(title_expr) -%}
    {{ return(adapter.dispatch('strip_release_year', 'netflix_elt')(title_expr)) }}
{%- endmacro %}

{% macro default__strip_release_year(title_expr) -%}
    trim(regexp_replace({{ title_expr }}, '{{ release_year_pattern() }}', ''))
{%- endmacro %}

{% macro snowflake__strip_release_year(title_expr) -%}
    {#- Snowflake's 4th argument is the start position; replace only the (anchored) match. -#}
    trim(regexp_replace({{ title_expr }}, '{{ release_year_pattern() }}', '', 1, 1))
{%- endmacro %}
