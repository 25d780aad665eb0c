-- One row per (movie, genre): the genres array unnested, for joins and group-bys by genre.
with

movies as (

    select * from {{ ref('stg_movies') }}

),

final as (

    select
        movies.movie_id,
        {{ unnest_value('g') }} as genre,
        {{ unnest_position('g') }} as genre_position,
        movies.primary_genre
    from movies,
        {{ unnest_array('movies.genres', 'g') }}

)

select
    movie_id,
    genre,
    genre_position,
    genre = primary_genre as is_primary_genre
from final
