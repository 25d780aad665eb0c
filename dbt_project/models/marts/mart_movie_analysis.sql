{% set min_ratings = var('min_ratings_for_top_movies') %}

with

movies as (

    select * from {{ ref('dim_movies') }}

),

ratings as (

    select * from {{ ref('fct_ratings') }}

),

movie_stats as (

    select
        movie_id,
        count(*) as ratings_count,
        avg(cast(rating as double)) as avg_rating,
        stddev_samp(cast(rating as double)) as rating_stddev,
        count(distinct user_id) as raters_count,
        count(case when is_positive then 1 end) as positive_ratings_count
    from ratings
    group by movie_id

),

qualified as (

    select *
    from movie_stats
    where ratings_count >= {{ min_ratings }}

),

final as (

    select
        rank() over (order by qualified.avg_rating desc, qualified.ratings_count desc) as rating_rank,
        qualified.movie_id,
        movies.title_clean,
        movies.release_year,
        movies.primary_genre,
        movies.genres_raw,
        qualified.ratings_count,
        round(qualified.avg_rating, 4) as avg_rating,
        round(qualified.rating_stddev, 4) as rating_stddev,
        round(cast(qualified.positive_ratings_count as double) / qualified.ratings_count, 4) as positive_share,
        {{ min_ratings }} as min_ratings_threshold
    from qualified
    inner join movies
        on qualified.movie_id = movies.movie_id

)

select * from final
