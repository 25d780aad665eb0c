{#
    Fails for every combination of `combination_of_columns` that occurs more than once
    (a model-level test: the grain of a table with a composite key).

    keys_in='ratings_window' checks only the keys that occur in the run's ratings window
    (macros/ratings_window.sql), but counts them over the whole table: a one-month run costs
    one join, and a rating duplicated across two months is still caught by the later month.
    (A `where` config would also cut the rows counted, and miss exactly that duplicate.)
#}
{% test unique_combination_of_columns(model, combination_of_columns, keys_in=none) %}
{%- set columns = combination_of_columns | join(', ') -%}
select {{ columns }}, count(*) as occurrences
from {{ model }}
{% if keys_in == 'ratings_window' -%}
where ({{ columns }}) in (select {{ columns }} from {{ model }} where {{ ratings_window_predicate() }})
{% elif keys_in is not none -%}
{{ exceptions.raise_compiler_error("unique_combination_of_columns: unknown keys_in " ~ keys_in) }}
{% endif -%}
group by {{ columns }}
having count(*) > 1
{% endtest %}
