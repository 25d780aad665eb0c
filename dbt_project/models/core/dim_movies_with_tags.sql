with

movies as (

    select * from {{ ref('dim_movies') }}

),

-- distinct tag texts per movie (several users often apply the same tag)
movie_user_tags as (

    select
        movie_id,
        tag,
        count(*) as times_applied
    from {{ ref('stg_tags') }}
    group by movie_id, tag

),

user_tags_agg as (

    select
        movie_id,
        {{ array_agg_ordered('tag', 'times_applied desc, tag') }} as user_tags,
        count(*) as distinct_user_tags_count,
        cast(sum(times_applied) as {{ dbt.type_bigint() }}) as user_tag_applications
    from movie_user_tags
    group by movie_id

),

top_genome as (

    select *
    from {{ ref('fct_genome_scores') }}
    where relevance_rank_in_movie <= {{ var('top_genome_tags_per_movie') }}

),

genome_agg as (

    select
        movie_id,
        {{ array_agg_ordered('tag', 'relevance_rank_in_movie') }} as top_genome_tags,
        max(relevance) as top_genome_relevance
    from top_genome
    group by movie_id

),

final as (

    select
        movies.movie_id,
        movies.title,
        movies.title_clean,
        movies.release_year,
        movies.genres,
        movies.primary_genre,
        user_tags_agg.user_tags,
        coalesce(user_tags_agg.distinct_user_tags_count, 0) as distinct_user_tags_count,
        coalesce(user_tags_agg.user_tag_applications, 0) as user_tag_applications,
        genome_agg.top_genome_tags,
        genome_agg.top_genome_relevance
    from movies
    left join user_tags_agg
        on movies.movie_id = user_tags_agg.movie_id
    left join genome_agg
        on movies.movie_id = genome_agg.movie_id

)

select * from final
