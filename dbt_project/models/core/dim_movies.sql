with

movies as (

    select * from {{ ref('stg_movies') }}

),

links as (

    select * from {{ ref('stg_links') }}

),

final as (

    select
        movies.movie_id,
        movies.title,
        movies.title_clean,
        movies.release_year,
        movies.genres,
        movies.genres_raw,
        movies.primary_genre,
        movies.genre_count,
        links.imdb_id,
        links.tmdb_id,
        links.imdb_url,
        links.tmdb_url
    from movies
    left join links
        on movies.movie_id = links.movie_id

)

select * from final
