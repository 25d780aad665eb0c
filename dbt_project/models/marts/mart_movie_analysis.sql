{% set min_ratings = var('min_ratings_for_top_movies') %}

with

movies as (

    select * from {{ ref('dim_movies') }}

),

movie_stats as (

    select
        movie_id,
        sum(ratings_count) as ratings_count,
        sum(rating_sum) / sum(ratings_count) as avg_rating,
        -- sample standard deviation from the yearly sums: (Σx² - (Σx)²/n) / (n - 1)
        case
            when sum(ratings_count) > 1 then sqrt(greatest(
                (sum(rating_square_sum) - sum(rating_sum) * sum(rating_sum) / sum(ratings_count))
                / (sum(ratings_count) - 1), 0))
        end as rating_stddev,
        sum(positive_ratings_count) as positive_ratings_count
    from {{ ref('fct_movie_ratings_yearly') }}
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
        cast(qualified.ratings_count as {{ dbt.type_bigint() }}) as ratings_count,
        round(qualified.avg_rating, 4) as avg_rating,
        round(qualified.rating_stddev, 4) as rating_stddev,
        round(cast(qualified.positive_ratings_count as double) / qualified.ratings_count, 4) as positive_share,
        {{ min_ratings }} as min_ratings_threshold
    from qualified
    inner join movies
        on qualified.movie_id = movies.movie_id

)

select * from final
