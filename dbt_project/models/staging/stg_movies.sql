with

source as (

    select * from {{ source('raw', 'movies') }}

),

renamed as (

    select
        cast(movieId as integer) as movie_id,
        trim(title) as title,
        trim(genres) as genres_raw,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

parsed as (

    select
        movie_id,
        title,
        {{ strip_release_year('title') }} as title_clean,
        {{ extract_release_year('title') }} as release_year,
        genres_raw,
        -- '(no genres listed)' is MovieLens's placeholder, not a genre: it becomes an empty array.
        {{ split_to_array("nullif(genres_raw, '(no genres listed)')", '|') }} as genres,
        nullif({{ dbt.split_part('genres_raw', "'|'", 1) }}, '(no genres listed)') as primary_genre,
        source_object,
        loaded_at
    from renamed

),

final as (

    select
        movie_id,
        title,
        title_clean,
        release_year,
        genres_raw,
        genres,
        primary_genre,
        {{ array_length('genres') }} as genre_count,
        source_object,
        loaded_at
    from parsed

)

select * from final
