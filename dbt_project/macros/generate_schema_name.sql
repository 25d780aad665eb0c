{#
    Use a node's custom schema as-is (staging, core, marts, snapshots), not dbt's default
    `<target_schema>_<custom>`: both the local DuckDB file and Snowflake get the same schema names,
    which is what the Dagster asset keys and the downstream readers expect.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
