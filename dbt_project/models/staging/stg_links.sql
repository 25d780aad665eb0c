with

source as (

    select * from {{ source('raw', 'links') }}

),

renamed as (

    select
        cast(movieId as integer) as movie_id,
        -- text on purpose: IMDb ids keep their leading zeros ('0114709' -> tt0114709)
        trim(imdbId) as imdb_id,
        cast(tmdbId as integer) as tmdb_id,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

final as (

    select
        movie_id,
        imdb_id,
        tmdb_id,
        {{ dbt.concat(["'https://www.imdb.com/title/tt'", 'imdb_id']) }} as imdb_url,
        case
            when tmdb_id is not null
                then {{ dbt.concat(["'https://www.themoviedb.org/movie/'", dbt.cast('tmdb_id', dbt.type_string())]) }}
        end as tmdb_url,
        source_object,
        loaded_at
    from renamed

)

select * from final
