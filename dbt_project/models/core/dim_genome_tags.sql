with

genome_tags as (

    select * from {{ ref('stg_genome_tags') }}

),

scores as (

    select
        tag_id,
        count(*) as movies_scored
    from {{ ref('stg_genome_scores') }}
    group by tag_id

),

final as (

    select
        genome_tags.tag_id,
        genome_tags.tag,
        lower(genome_tags.tag) as tag_normalized,
        coalesce(scores.movies_scored, 0) as movies_scored
    from genome_tags
    left join scores
        on genome_tags.tag_id = scores.tag_id

)

select * from final
