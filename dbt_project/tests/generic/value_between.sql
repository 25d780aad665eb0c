{#
    Fails for every non-NULL value outside the closed interval [min_value, max_value].
    Usage:  data_tests: [ { value_between: { min_value: 0, max_value: 1 } } ]
#}
{% test value_between(model, column_name, min_value, max_value) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null
  and ({{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }})
{% endtest %}
