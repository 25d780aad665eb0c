{{ config(meta={'dagster': {'ref': {'name': 'bridge_movie_genres'}}}) }}
{#
    The bridge has exactly genre_count rows per movie (no genre lost or duplicated by the
    unnesting), and its primary genre is dim_movies.primary_genre.
#}
with bridge as (
    select
        movie_id,
        count(*) as bridge_rows,
        max(case when is_primary_genre then genre end) as bridge_primary_genre
    from {{ ref('bridge_movie_genres') }}
    group by movie_id
)

select
    movies.movie_id,
    movies.genre_count,
    coalesce(bridge.bridge_rows, 0) as bridge_rows,
    movies.primary_genre,
    bridge.bridge_primary_genre
from {{ ref('dim_movies') }} as movies
left join bridge
    on movies.movie_id = bridge.movie_id
where movies.genre_count <> coalesce(bridge.bridge_rows, 0)
   or coalesce(movies.primary_genre, '') <> coalesce(bridge.bridge_primary_genre, '')
