{# The ten half-star values a rating can take (stg_ratings tests the rule: value_between, in_half_steps). #}
{% macro rating_values() -%}
    {{ return(['0.5', '1.0', '1.5', '2.0', '2.5', '3.0', '3.5', '4.0', '4.5', '5.0']) }}
{%- endmacro %}

{# Column name for the count of one rating value: 4.5 -> ratings_4_5 #}
{% macro rating_value_column(value) -%}
    ratings_{{ value | replace('.', '_') }}
{%- endmacro %}

{# True when a genre mask (sum of seed genres.genre_bit values) has the genre's bit set. #}
{% macro mask_has_genre(mask, genre_bit) -%}
    mod(floor({{ mask }} / {{ genre_bit }}), 2) = 1
{%- endmacro %}
