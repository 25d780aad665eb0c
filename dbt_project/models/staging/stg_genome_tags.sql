with

source as (

    select * from {{ source('raw', 'genome_tags') }}

),

renamed as (

    select
        cast(tagId as integer) as tag_id,
        trim(tag) as tag,
        _source_object as source_object,
        _loaded_at as loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
