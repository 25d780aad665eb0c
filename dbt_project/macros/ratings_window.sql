{#
    The fct_ratings window, half-open [start, end), as naive UTC timestamps.

    Dagster passes it as environment variables (NETFLIX_ELT_RATINGS_WINDOW_START / _END);
    by hand, the vars ratings_window_start / ratings_window_end work too (the env vars win
    when both are set). Why env vars: a different --vars value makes dbt re-parse the whole
    project (~2.5 s per invocation, i.e. per monthly load), while these macros are only
    rendered when SQL is compiled or a hook runs, so the parse stays valid from run to run.
    Nothing may read the window at parse time (a model's config(), a yml value rendered
    while parsing), or a re-used parse would carry an old window.
#}

{#
    `execute` is false while dbt parses: the env vars are read only when SQL is compiled or
    run. Read at parse time, dbt would record them as inputs of every file that calls these
    macros and re-parse those files whenever the window changes (~1 s per invocation).
#}
{% macro ratings_window_start() -%}
    {{ return((execute and env_var('NETFLIX_ELT_RATINGS_WINDOW_START', '')) or var('ratings_window_start')) }}
{%- endmacro %}

{% macro ratings_window_end() -%}
    {{ return((execute and env_var('NETFLIX_ELT_RATINGS_WINDOW_END', '')) or var('ratings_window_end')) }}
{%- endmacro %}

{# start <= column < end (never BETWEEN: adjacent windows must not share their boundary) #}
{% macro ratings_window_predicate(column='rated_at') -%}
    {%- set start, end = ratings_window_start(), ratings_window_end() -%}
    {%- if start | string >= end | string -%}
        {{ exceptions.raise_compiler_error(
            "fct_ratings: empty window, start (" ~ start ~ ") must be before end (" ~ end ~ ")") }}
    {%- endif -%}
    {{ column }} >= cast('{{ start }}' as {{ dbt.type_timestamp() }})
    and {{ column }} < cast('{{ end }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#
    The window with a pruning hint for stg_ratings: the same bounds on its raw epoch column
    (seconds since 1970-01-01 UTC; start <= rated_at < end holds exactly when
    ceil(start) <= epoch < ceil(end), computed here) besides the predicate on rated_at. A
    stored column compared with constants lets the warehouse skip the storage blocks of other
    months (DuckDB's zone maps, Snowflake's micro-partition pruning); rated_at is computed by
    the staging view, so on its own every row of raw.ratings is converted and compared
    (ml-25m, one month: 0.15 s -> 0.002 s per query).
#}
{% macro ratings_window_epoch_predicate(epoch_column='rated_at_epoch', column='rated_at') -%}
    {{ epoch_column }} >= {{ epoch_seconds_ceil(ratings_window_start()) }}
    and {{ epoch_column }} < {{ epoch_seconds_ceil(ratings_window_end()) }}
    and {{ ratings_window_predicate(column) }}
{%- endmacro %}

{# A naive UTC timestamp ('YYYY-MM-DD[ HH:MM:SS[.ffffff]]') as whole epoch seconds, rounded up. #}
{% macro epoch_seconds_ceil(naive_utc) -%}
    {%- set datetime = modules.datetime.datetime -%}
    {%- set since_epoch = datetime.fromisoformat(naive_utc | string) - datetime(1970, 1, 1) -%}
    {{- since_epoch.total_seconds() | round(0, 'ceil') | int -}}
{%- endmacro %}

{#
    Generic tests' `where` config is rendered while the project is parsed, so it cannot hold
    the window itself: a re-used parse would test an old window. Tests scoped to the window
    say `where: ratings_window` (`ratings_window_epoch` on stg_ratings, `ratings_window_years`
    on the yearly rollups), and this
    override of dbt's own hook (a root-project macro of the same name wins) puts the predicate
    in when the test is compiled. Any other `where` works as in dbt.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'ratings_window' -%}
        {%- set where = ratings_window_predicate() -%}
    {%- elif where == 'ratings_window_epoch' -%}
        {%- set where = ratings_window_epoch_predicate() -%}
    {%- elif where == 'ratings_window_years' -%}
        {%- set where = ratings_window_years_predicate() -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#
    The whole years the window touches, for the yearly rollups: `year_start` is a date
    expression for the first day of a row's year. A monthly window rebuilds its year whole,
    from fct_ratings, which holds every loaded row of it.
#}
{% macro ratings_window_years_predicate(year_start='rated_year') -%}
    {%- set start, end = ratings_window_start(), ratings_window_end() -%}
    {{ year_start }} >= cast({{ dbt.date_trunc('year', "cast('" ~ start ~ "' as " ~ dbt.type_timestamp() ~ ")") }} as date)
    and {{ year_start }} < cast('{{ end }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{# The first day of the year of a date column. #}
{% macro year_of(date_column) -%}
    cast({{ dbt.date_trunc('year', date_column) }} as date)
{%- endmacro %}
