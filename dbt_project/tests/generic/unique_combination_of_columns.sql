{#
    Fails for every combination of `combination_of_columns` that occurs more than once
    (a model-level test: the grain of a table with a composite key).

    keys_in='ratings_window' checks only the keys that occur in the run's ratings window
    (macros/ratings_window.sql), against the whole table: duplicates within the window, plus
    rows outside it that repeat a key of the window. A one-month run costs a scan and a small
    join, and a rating duplicated across two months is still caught by the later month. (A
    `where` config would cut the rows counted too, and miss exactly that duplicate.)
#}
{% test unique_combination_of_columns(model, combination_of_columns, keys_in=none) %}
{%- set columns = combination_of_columns | join(', ') -%}
{%- if keys_in is none -%}
select {{ columns }}, count(*) as occurrences
from {{ model }}
group by {{ columns }}
having count(*) > 1
{%- elif keys_in == 'ratings_window' -%}
with window_keys as (
    select {{ columns }} from {{ model }} where {{ ratings_window_predicate() }}
)

select {{ columns }}, count(*) as occurrences
from window_keys
group by {{ columns }}
having count(*) > 1

union all

select {% for c in combination_of_columns %}outside.{{ c }}, {% endfor %}null as occurrences
from {{ model }} as outside
where not ({{ ratings_window_predicate() }})
    and exists (
        select 1 from window_keys
        where {% for c in combination_of_columns %}window_keys.{{ c }} = outside.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    )
{%- else -%}
{{ exceptions.raise_compiler_error("unique_combination_of_columns: unknown keys_in " ~ keys_in) }}
{%- endif %}
{% endtest %}
