{#
    mart_movie_analysis only ranks movies with at least `min_ratings_for_top_movies` ratings,
    and rank 1 has the highest average.
#}
with m as (
    select * from {{ ref('mart_movie_analysis') }}
)

select movie_id, 'below threshold' as problem
from m
where ratings_count < {{ var('min_ratings_for_top_movies') }}

union all

select movie_id, 'rank 1 is not the best average' as problem
from m
where rating_rank = 1
  and avg_rating < (select max(avg_rating) from m)
