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


{# ---- one row per array element: a FROM-clause item to put after `from <relation> as <alias>,`
    `unnest_array(array_expr, alias)` joins laterally; `unnest_value(alias)` is the element (text)
    and `unnest_position(alias)` its 1-based position in the array.
#}
{% macro unnest_array(array_expr, alias) -%}
    {{ return(adapter.dispatch('unnest_array', 'netflix_elt')(array_expr, alias)) }}
{%- endmacro %}

{#- DuckDB (WITH ORDINALITY since 1.3) and PostgreSQL-like warehouses. Written as a table
    function, not as a subquery over the array, so that the lineage sqlglot reads from the
    compiled SQL (the asset's column lineage) can follow the element back to the array. -#}
{% macro default__unnest_array(array_expr, alias) -%}
    unnest({{ array_expr }}) with ordinality as {{ alias }}(value, position)
{%- endmacro %}

{% macro snowflake__unnest_array(array_expr, alias) -%}
    lateral flatten(input => {{ array_expr }}) as {{ alias }}
{%- endmacro %}

{% macro unnest_value(alias) -%}
    {{ return(adapter.dispatch('unnest_value', 'netflix_elt')(alias)) }}
{%- endmacro %}

{% macro default__unnest_value(alias) -%}
    {{ alias }}.value
{%- endmacro %}

{% macro snowflake__unnest_value(alias) -%}
    cast({{ alias }}.value as varchar)
{%- endmacro %}

{% macro unnest_position(alias) -%}
    {{ return(adapter.dispatch('unnest_position', 'netflix_elt')(alias)) }}
{%- endmacro %}

{% macro default__unnest_position(alias) -%}
    {{ alias }}.position
{%- endmacro %}

{% macro snowflake__unnest_position(alias) -%}
    ({{ alias }}.index + 1)
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


{# ---- the title without its trailing release year (same pattern as above), trimmed ----
    The pattern is anchored at the end, so it matches at most once: the 3-argument
    regexp_replace means the same on DuckDB (first match) and Snowflake (all matches).
#}
{% macro strip_release_year(title_expr) -%}
    {{ return(adapter.dispatch('strip_release_year', 'netflix_elt')(title_expr)) }}
{%- endmacro %}

{% macro default__strip_release_year(title_expr) -%}
    trim(regexp_replace({{ title_expr }}, '{{ release_year_pattern() }}', ''))
{%- endmacro %}


{# ---- bitwise OR of a bigint column, as an aggregate ---- #}
{% macro bit_or_agg(expr) -%}
    {{ return(adapter.dispatch('bit_or_agg', 'netflix_elt')(expr)) }}
{%- endmacro %}

{% macro default__bit_or_agg(expr) -%}
    bit_or({{ expr }})
{%- endmacro %}

{% macro snowflake__bit_or_agg(expr) -%}
    bitor_agg({{ expr }})
{%- endmacro %}
