{% set rating_values = ['0.5', '1.0', '1.5', '2.0', '2.5', '3.0', '3.5', '4.0', '4.5', '5.0'] %}

with

genres as (

    select * from {{ ref('genres') }}

),

movie_genres as (

    select * from {{ ref('bridge_movie_genres') }}

),

ratings as (

    select * from {{ ref('fct_ratings') }}

),

genre_ratings as (

    select
        movie_genres.genre,
        count(distinct movie_genres.movie_id) as movies_count,
        count(ratings.rating) as ratings_count,
        avg(cast(ratings.rating as double)) as avg_rating,
        {% for v in rating_values %}
        count(case when ratings.rating = {{ v }} then 1 end) as ratings_{{ v | replace('.', '_') }},
        {% endfor %}
        count(distinct ratings.user_id) as raters_count
    from movie_genres
    left join ratings
        on movie_genres.movie_id = ratings.movie_id
    group by movie_genres.genre

),

final as (

    select
        genres.genre,
        genres.display_name,
        coalesce(genre_ratings.movies_count, 0) as movies_count,
        coalesce(genre_ratings.ratings_count, 0) as ratings_count,
        coalesce(genre_ratings.raters_count, 0) as raters_count,
        round(genre_ratings.avg_rating, 4) as avg_rating,
        {% for v in rating_values %}
        coalesce(genre_ratings.ratings_{{ v | replace('.', '_') }}, 0) as ratings_{{ v | replace('.', '_') }},
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

)

select * from final
