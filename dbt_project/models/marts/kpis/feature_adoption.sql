-- Feature adoption per calendar week: users of feature X (feature_used events, properties.feature) divided by
-- all active users that week. Feature names are client values: beyond the var label_max_values (50) names with
-- the most users over all weeks, the rest fold into one '(other)' row per week (macros/labels.sql).
with feature_uses as (

    select
        cast({{ dbt.date_trunc('week', 'event_date') }} as date) as week_start,
        user_id,
        {{ json_label('properties', 'feature') }} as feature
    from {{ ref('int_activity_events') }}
    where event_name = 'feature_used'

),

weekly_active as (

    select
        cast({{ dbt.date_trunc('week', 'event_date') }} as date) as week_start,
        count(distinct user_id) as active_users
    from {{ ref('int_activity_events') }}
    group by cast({{ dbt.date_trunc('week', 'event_date') }} as date)

),

feature_ranks as (

    {{ label_ranks('feature_uses', 'feature', 'user_id') }}

),

folded_uses as (

    select
        feature_uses.week_start,
        feature_uses.user_id,
        feature_uses.feature as feature_as_sent,
        case when feature_ranks.is_folded then '(other)' else feature_uses.feature end as feature
    from feature_uses
    inner join feature_ranks on feature_uses.feature = feature_ranks.label

),

weekly_feature_users as (

    select
        week_start,
        feature,
        count(distinct user_id) as feature_users,
        count(*) as feature_events,
        count(distinct feature_as_sent) as feature_names
    from folded_uses
    group by week_start, feature

)

select
    weekly_feature_users.week_start,
    weekly_feature_users.feature,
    weekly_feature_users.feature_users,
    weekly_feature_users.feature_events,
    weekly_active.active_users,
    weekly_feature_users.feature_users * 1.0e0 / weekly_active.active_users as adoption_rate,
    weekly_feature_users.feature_names
from weekly_feature_users
inner join weekly_active on weekly_feature_users.week_start = weekly_active.week_start
