with

movies as (

    select * from {{ ref('dim_movies') }}

),

movie_stats as (

    select
        movie_id,
        sum(ratings_count) as ratings_count,
        sum(rating_sum) as rating_sum
    from {{ ref('fct_movie_ratings_yearly') }}
    group by movie_id

),

final as (

    select
        movies.release_year,
        count(*) as movies_released,
        count(movie_stats.movie_id) as movies_rated,
        cast(coalesce(sum(movie_stats.ratings_count), 0) as {{ dbt.type_bigint() }}) as ratings_count,
        -- rating-weighted: the mean of every rating given to that year's movies
        round(sum(movie_stats.rating_sum) / nullif(sum(movie_stats.ratings_count), 0), 4) as avg_rating,
        -- movie-weighted: the mean of the movies' own averages
        round(avg(movie_stats.rating_sum / movie_stats.ratings_count), 4) as avg_movie_rating
    from movies
    left join movie_stats
        on movies.movie_id = movie_stats.movie_id
    where movies.release_year is not null
    group by movies.release_year

)

select * from final
