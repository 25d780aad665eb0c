with

source as (

    select * from {{ source('raw', 'genome_scores') }}

),

renamed as (

    select
        cast(movieId as integer) as movie_id,
        cast(tagId as integer) as tag_id,
        cast(relevance as double) as relevance,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
