{#
    One row per user, with an engagement segment a dashboard can filter and group by.
    Segments by number of ratings: casual < 50 <= regular < 200 <= heavy < 1000 <= power.
#}

with

users as (

    select * from {{ ref('dim_users') }}

),

rating_habits as (

    -- a day and a month each lie in one year, so they add up over the yearly rows
    select
        user_id,
        sum(active_months_count) as active_months_count,
        sum(active_days_count) as active_days_count,
        sum(positive_ratings_count) as positive_ratings_count
    from {{ ref('fct_user_ratings_yearly') }}
    group by user_id

),

final as (

    select
        users.user_id,
        case
            when users.ratings_count >= 1000 then 'power'
            when users.ratings_count >= 200 then 'heavy'
            when users.ratings_count >= 50 then 'regular'
            else 'casual'
        end as engagement_segment,
        users.ratings_count,
        users.tags_count,
        users.tagged_movies_count,
        round(users.avg_rating, 4) as avg_rating,
        case
            when users.ratings_count > 0
                then round(cast(coalesce(rating_habits.positive_ratings_count, 0) as double) / users.ratings_count, 4)
        end as positive_share,
        users.first_activity_at,
        users.last_activity_at,
        users.active_span_days,
        cast(coalesce(rating_habits.active_days_count, 0) as {{ dbt.type_bigint() }}) as active_days_count,
        cast(coalesce(rating_habits.active_months_count, 0) as {{ dbt.type_bigint() }}) as active_months_count,
        case
            when coalesce(rating_habits.active_days_count, 0) > 0
                then round(cast(users.ratings_count as double) / rating_habits.active_days_count, 2)
        end as ratings_per_active_day,
        users.tags_count > 0 as is_tagger
    from users
    left join rating_habits
        on users.user_id = rating_habits.user_id

)

select * from final
