with

movies as (

    select * from {{ ref('dim_movies_with_tags') }}

),

movie_stats as (

    select
        movie_id,
        cast(sum(ratings_count) as {{ dbt.type_bigint() }}) as ratings_count,
        sum(rating_sum) / sum(ratings_count) as avg_rating,
        min(first_rated_at) as first_rated_at,
        max(last_rated_at) as last_rated_at
    from {{ ref('fct_movie_ratings_yearly') }}
    group by movie_id

),

final as (

    select
        movies.movie_id,
        movies.title_clean,
        movies.release_year,
        movies.genres,
        movies.primary_genre,
        coalesce(movie_stats.ratings_count, 0) as ratings_count,
        round(movie_stats.avg_rating, 4) as avg_rating,
        movie_stats.first_rated_at,
        movie_stats.last_rated_at,
        movies.distinct_user_tags_count,
        movies.top_genome_tags
    from movies
    left join movie_stats
        on movies.movie_id = movie_stats.movie_id

)

select * from final
