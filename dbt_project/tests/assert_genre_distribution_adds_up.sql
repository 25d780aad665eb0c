{#
    In mart_genre_rating_distribution the ten per-rating-value columns add up to the genre's
    ratings_count (every rating is one of the ten half-star values).
#}
select genre, ratings_count
from {{ ref('mart_genre_rating_distribution') }}
where ratings_count <> (
    ratings_0_5 + ratings_1_0 + ratings_1_5 + ratings_2_0 + ratings_2_5
    + ratings_3_0 + ratings_3_5 + ratings_4_0 + ratings_4_5 + ratings_5_0
)
