{#
    Fails for every non-NULL value that is not a multiple of 0.5 (MovieLens star ratings).
#}
{% test in_half_steps(model, column_name) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} * 2 <> round({{ column_name }} * 2, 0)
{% endtest %}
