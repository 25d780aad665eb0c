{#
    Ratings facts come from the yearly rollup (a few rows per user) rather than from every
    rating: dim_users is rebuilt on each new month of ratings.
#}
with

yearly as (

    select * from {{ ref('fct_user_ratings_yearly') }}

),

tags as (

    select * from {{ ref('stg_tags') }}

),

user_ratings as (

    select
        user_id,
        cast(sum(ratings_count) as {{ dbt.type_bigint() }}) as ratings_count,
        sum(rating_sum) / sum(ratings_count) as avg_rating,
        min(first_rated_at) as first_rated_at,
        max(last_rated_at) as last_rated_at
    from yearly
    group by user_id

),

user_tags as (

    select
        user_id,
        count(*) as tags_count,
        count(distinct movie_id) as tagged_movies_count,
        min(tagged_at) as first_tagged_at,
        max(tagged_at) as last_tagged_at
    from tags
    group by user_id

),

users as (

    select user_id from user_ratings
    union
    select user_id from user_tags

),

final as (

    select
        users.user_id,
        coalesce(user_ratings.ratings_count, 0) as ratings_count,
        coalesce(user_tags.tags_count, 0) as tags_count,
        coalesce(user_tags.tagged_movies_count, 0) as tagged_movies_count,
        user_ratings.avg_rating,
        user_ratings.first_rated_at,
        user_ratings.last_rated_at,
        user_tags.first_tagged_at,
        user_tags.last_tagged_at,
        case
            when user_tags.first_tagged_at is null then user_ratings.first_rated_at
            when user_ratings.first_rated_at is null then user_tags.first_tagged_at
            when user_tags.first_tagged_at < user_ratings.first_rated_at then user_tags.first_tagged_at
            else user_ratings.first_rated_at
        end as first_activity_at,
        case
            when user_tags.last_tagged_at is null then user_ratings.last_rated_at
            when user_ratings.last_rated_at is null then user_tags.last_tagged_at
            when user_tags.last_tagged_at > user_ratings.last_rated_at then user_tags.last_tagged_at
            else user_ratings.last_rated_at
        end as last_activity_at,
        user_ratings.user_id is not null as has_rated,
        user_tags.user_id is not null as has_tagged
    from users
    left join user_ratings
        on users.user_id = user_ratings.user_id
    left join user_tags
        on users.user_id = user_tags.user_id

)

select
    *,
    {{ dbt.datediff('first_activity_at', 'last_activity_at', 'day') }} as active_span_days
from final
