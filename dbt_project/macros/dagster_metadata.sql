{#
    What each built node tells Dagster about itself, from inside dbt (a post-hook on every model,
    seed and snapshot, dbt_project.yml).

    1. Its columns as the warehouse has them, and its parents' columns: one `log()` line holding a
       JSON object {"columns": {...}, "parents": {<relation>: {"columns": {...}}}}. dagster-dbt's
       event stream takes a JSON log line of a node as that node's column metadata (the contract of
       the `dagster` dbt package's log_column_level_metadata macro, documented on
       DbtEventIterator.fetch_column_metadata): the materialization gets the column schema, and
       dagster-dbt derives column-level lineage from the compiled SQL with sqlglot.
    2. Its row count (not for views: counting one runs its whole query), as a plain-text line
       `netflix_elt.row_count <n>` that netflix_elt/assets/dbt_events.py turns into
       `dagster/row_count` on the materialization, so the asset's plot shows growth.
    3. The names its relation and its parents' have on this target (`netflix_elt.relations ...`):
       the code location's manifest is parsed against the local target, so on Snowflake its
       relation names (database included) are not those in the compiled SQL, and dagster-dbt
       could not tie a column to its parent asset; dbt_events.py corrects its copy with these.

    Why from inside dbt and not dagster-dbt's fetch_column_metadata()/fetch_row_counts(): those
    open a second adapter connection from the Dagster process, which DuckDB refuses while dbt holds
    the database file (dagster-dbt then holds every event back until dbt exits); dbt's own
    connection answers as each node finishes, on both warehouses, for a few metadata queries per
    node.

    Only under dagster-dbt (DAGSTER_DBT_CLI=true): a `dbt build` by hand logs nothing extra.
#}

{% macro netflix_elt_node_metadata() -%}
    {%- if execute and env_var('DAGSTER_DBT_CLI', '') == 'true' -%}
        {%- set metadata = {'columns': netflix_elt_column_types(this), 'parents': {}} -%}
        {%- set relations = {model.unique_id: this.render()} -%}
        {%- for parent_id in model.depends_on.nodes -%}
            {%- set parent = graph.sources.get(parent_id) if parent_id.startswith('source.') else graph.nodes.get(parent_id) -%}
            {%- if parent and parent.resource_type in ('model', 'seed', 'snapshot', 'source') -%}
                {%- set relation = api.Relation.create(
                        database=parent.database, schema=parent.schema,
                        identifier=parent.identifier if parent.resource_type == 'source' else parent.alias) -%}
                {%- do metadata['parents'].update({relation.render(): {'columns': netflix_elt_column_types(relation)}}) -%}
                {%- do relations.update({parent_id: relation.render()}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do log(tojson(metadata), info=true) -%}
        {%- do log('netflix_elt.relations ' ~ tojson({'adapter_type': target.type, 'relations': relations}), info=true) -%}
        {%- if model.config.materialized != 'view' -%}
            {%- set counted = run_query('select count(*) from ' ~ this) -%}
            {%- do log('netflix_elt.row_count ' ~ counted.columns[0].values()[0], info=true) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro netflix_elt_column_types(relation) -%}
    {%- set types = {} -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do types.update({column.name | lower: {'data_type': column.data_type | lower}}) -%}
    {%- endfor -%}
    {{- return(types) -}}
{%- endmacro %}
