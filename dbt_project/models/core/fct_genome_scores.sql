with

scores as (

    select * from {{ ref('stg_genome_scores') }}

),

genome_tags as (

    select * from {{ ref('dim_genome_tags') }}

),

final as (

    select
        scores.movie_id,
        scores.tag_id,
        genome_tags.tag,
        scores.relevance,
        row_number() over (
            partition by scores.movie_id
            order by scores.relevance desc, scores.tag_id
        ) as relevance_rank_in_movie
    from scores
    inner join genome_tags
        on scores.tag_id = genome_tags.tag_id

)

select * from final
