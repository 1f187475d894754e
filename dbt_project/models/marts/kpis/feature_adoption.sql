-- Feature adoption per calendar week: users of feature X (feature_used events, properties.feature) divided by
-- all active users that week.
with weekly_active as (

    select
        cast({{ dbt.date_trunc('week', 'event_date') }} as date) as week_start,
        count(distinct user_id) as active_users
    from {{ ref('int_activity_events') }}
    group by cast({{ dbt.date_trunc('week', 'event_date') }} as date)

),

weekly_feature_users as (

    select
        cast({{ dbt.date_trunc('week', 'event_date') }} as date) as week_start,
        {{ json_label('properties', 'feature') }} as feature,
        count(distinct user_id) as feature_users,
        count(*) as feature_events
    from {{ ref('int_activity_events') }}
    where event_name = 'feature_used' and {{ json_label('properties', 'feature') }} is not null
    group by cast({{ dbt.date_trunc('week', 'event_date') }} as date), {{ json_label('properties', 'feature') }}

)

select
    weekly_feature_users.week_start,
    weekly_feature_users.feature,
    weekly_feature_users.feature_users,
    weekly_feature_users.feature_events,
    weekly_active.active_users,
    weekly_feature_users.feature_users * 1.0 / weekly_active.active_users as adoption_rate
from weekly_feature_users
inner join weekly_active on weekly_feature_users.week_start = weekly_active.week_start
