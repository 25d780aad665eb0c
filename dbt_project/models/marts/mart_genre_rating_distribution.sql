{#
    Built from the yearly rollups, not from every rating: ratings per genre add up over the
    genre's movies; distinct raters per genre do not add up, so they come from each user's
    genre mask (the OR of their yearly masks, seed genres.genre_bit).
#}

with

genres as (

    select * from {{ ref('genres') }}

),

movie_genres as (

    select * from {{ ref('bridge_movie_genres') }}

),

movie_stats as (

    select
        movie_id,
        sum(ratings_count) as ratings_count,
        sum(rating_sum) as rating_sum,
        {% for v in rating_values() %}
        sum({{ rating_value_column(v) }}) as {{ rating_value_column(v) }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ ref('fct_movie_ratings_yearly') }}
    group by movie_id

),

genre_ratings as (

    select
        movie_genres.genre,
        count(distinct movie_genres.movie_id) as movies_count,
        sum(movie_stats.ratings_count) as ratings_count,
        sum(movie_stats.rating_sum) / nullif(sum(movie_stats.ratings_count), 0) as avg_rating,
        {% for v in rating_values() %}
        sum(movie_stats.{{ rating_value_column(v) }}) as {{ rating_value_column(v) }}{{ ',' if not loop.last }}
        {% endfor %}
    from movie_genres
    left join movie_stats
        on movie_genres.movie_id = movie_stats.movie_id
    group by movie_genres.genre

),

user_genres as (

    select
        user_id,
        {{ bit_or_agg('genres_mask') }} as genres_mask
    from {{ ref('fct_user_ratings_yearly') }}
    group by user_id

),

genre_raters as (

    select
        genres.genre,
        count(user_genres.user_id) as raters_count
    from genres
    inner join user_genres
        on {{ mask_has_genre('user_genres.genres_mask', 'genres.genre_bit') }}
    group by genres.genre

),

final as (

    select
        genres.genre,
        genres.display_name,
        cast(coalesce(genre_ratings.movies_count, 0) as {{ dbt.type_bigint() }}) as movies_count,
        cast(coalesce(genre_ratings.ratings_count, 0) as {{ dbt.type_bigint() }}) as ratings_count,
        cast(coalesce(genre_raters.raters_count, 0) as {{ dbt.type_bigint() }}) as raters_count,
        round(genre_ratings.avg_rating, 4) as avg_rating,
        {% for v in rating_values() %}
        cast(coalesce(genre_ratings.{{ rating_value_column(v) }}, 0) as {{ dbt.type_bigint() }}) as {{ rating_value_column(v) }},
        {% endfor %}
        case
            when coalesce(genre_ratings.ratings_count, 0) > 0
                then round(
                    cast(genre_ratings.ratings_4_0 + genre_ratings.ratings_4_5 + genre_ratings.ratings_5_0 as double)
                    / genre_ratings.ratings_count, 4)
        end as share_4_stars_or_more
    from genres
    left join genre_ratings
        on genres.genre = genre_ratings.genre
    left join genre_raters
        on genres.genre = genre_raters.genre

)

select * from final
