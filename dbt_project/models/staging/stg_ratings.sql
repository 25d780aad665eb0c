with

source as (

    select * from {{ source('raw', 'ratings') }}

),

renamed as (

    select
        cast(userId as integer) as user_id,
        cast(movieId as integer) as movie_id,
        cast(rating as decimal(2, 1)) as rating,
        cast(timestamp as bigint) as rated_at_epoch,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

final as (

    select
        user_id,
        movie_id,
        rating,
        {{ epoch_to_timestamp('rated_at_epoch') }} as rated_at,
        rated_at_epoch,
        source_object,
        loaded_at
    from renamed

)

select * from final
