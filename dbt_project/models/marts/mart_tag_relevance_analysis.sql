{% set threshold = var('high_relevance_threshold') %}

with

scores as (

    select * from {{ ref('fct_genome_scores') }}

),

genome_tags as (

    select * from {{ ref('dim_genome_tags') }}

),

tag_stats as (

    select
        tag_id,
        count(*) as movies_scored,
        avg(relevance) as avg_relevance,
        stddev_samp(relevance) as relevance_stddev,
        min(relevance) as min_relevance,
        max(relevance) as max_relevance,
        percentile_cont(0.5) within group (order by relevance) as median_relevance,
        count(case when relevance >= {{ threshold }} then 1 end) as highly_relevant_movies_count,
        count(case when relevance_rank_in_movie = 1 then 1 end) as top_tag_of_movies_count
    from scores
    group by tag_id

),

final as (

    select
        rank() over (order by tag_stats.avg_relevance desc, genome_tags.tag_id) as relevance_rank,
        genome_tags.tag_id,
        genome_tags.tag,
        tag_stats.movies_scored,
        round(tag_stats.avg_relevance, 4) as avg_relevance,
        round(tag_stats.median_relevance, 4) as median_relevance,
        round(tag_stats.relevance_stddev, 4) as relevance_stddev,
        tag_stats.min_relevance,
        tag_stats.max_relevance,
        tag_stats.highly_relevant_movies_count,
        round(cast(tag_stats.highly_relevant_movies_count as double) / tag_stats.movies_scored, 4) as highly_relevant_share,
        tag_stats.top_tag_of_movies_count,
        {{ threshold }} as high_relevance_threshold
    from genome_tags
    inner join tag_stats
        on genome_tags.tag_id = tag_stats.tag_id

)

select * from final
