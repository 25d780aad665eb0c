{#
    Fails for every row whose array column holds an element that is not a value of
    `field` in the relation `to` (e.g. every genre of a movie is a known MovieLens genre).
    `key` is the model's unique key (grouping by an array is not portable).
    Portable: counts the reference values the array contains and compares with the array size
    (arrays are assumed duplicate-free, which the genre lists are).
#}
{% test array_elements_in(model, column_name, to, field, key) %}
with known as (
    select distinct {{ field }} as value from {{ to }}
),

checked as (
    select
        m.{{ key }} as row_key,
        max({{ netflix_elt.array_length('m.' ~ column_name) }}) as element_count,
        count(known.value) as known_element_count
    from {{ model }} as m
    left join known
        on {{ netflix_elt.array_contains('m.' ~ column_name, 'known.value') }}
    group by m.{{ key }}
)

select *
from checked
where element_count <> known_element_count
{% endtest %}
