with

source as (

    select * from {{ source('raw', 'tags') }}

),

renamed as (

    select
        cast(userId as integer) as user_id,
        cast(movieId as integer) as movie_id,
        trim(tag) as tag,
        cast(timestamp as bigint) as tagged_at_epoch,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

final as (

    select
        user_id,
        movie_id,
        tag,
        lower(tag) as tag_normalized,
        {{ epoch_to_timestamp('tagged_at_epoch') }} as tagged_at,
        tagged_at_epoch,
        source_object,
        loaded_at
    from renamed

)

select * from final
