-- One row per user at as_of: recency and frequency flags, lifecycle stage, RFM scores and segment, and the
-- engagement score. Thresholds are dbt vars, weights and segment ranges are seeds.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

users as (

    select * from {{ ref('int_users') }}

),

activity as (

    select activity_events.*, {{ dbt.datediff('activity_events.event_at', 'as_of_point.as_of', 'second') }} / 86400.0e0 as days_ago
    from {{ ref('int_activity_events') }} as activity_events
    cross join as_of_point

),

user_activity as (

    select
        user_id,
        max(event_at) as last_active_at,
        count(distinct case when days_ago < {{ var('rfm_frequency_days') }} then event_date end) as frequency_active_days,
        -- decimal(38, 4) on both engines (a sum of decimal(18, 4) is (38, 4) on DuckDB, (28, 4) on Spark)
        cast(coalesce(sum(case when days_ago < {{ var('rfm_monetary_days') }} and event_name in ('order_completed', 'order_refunded')
                          then revenue end), 0) as decimal(38, 4)) as monetary_revenue
    from activity
    group by user_id

),

recent_sessions as (

    select sessions.user_id, count(*) as sessions_recent
    from {{ ref('int_sessions') }} as sessions
    cross join as_of_point
    where {{ dbt.datediff('sessions.session_start_at', 'as_of_point.as_of', 'second') }} < {{ var('active_recent_days') * 86400 }}
    group by sessions.user_id

),

engagement as (

    select activity.user_id, sum(weights.weight) as engagement_score
    from activity
    inner join {{ ref('engagement_weights') }} as weights on activity.event_name = weights.event_name
    where activity.days_ago < {{ var('engagement_days') }}
    group by activity.user_id

),

measured as (

    select
        users.user_id,
        users.first_active_at,
        user_activity.last_active_at,
        {{ dbt.datediff('user_activity.last_active_at', 'as_of_point.as_of', 'second') }} / 86400.0e0 as days_since_last_active,
        {{ dbt.datediff('users.first_active_at', 'as_of_point.as_of', 'second') }} / 86400.0e0 as days_since_first_active,
        user_activity.frequency_active_days,
        user_activity.monetary_revenue,
        coalesce(recent_sessions.sessions_recent, 0) as sessions_recent,
        coalesce(engagement.engagement_score, 0) as engagement_score
    from users
    cross join as_of_point
    inner join user_activity on users.user_id = user_activity.user_id
    left join recent_sessions on users.user_id = recent_sessions.user_id
    left join engagement on users.user_id = engagement.user_id

),

scored as (

    select
        *,
        -- quintiles by rank; ties share a score (percent_rank), so equal users never land in different scores
        least(5, 1 + cast(floor(5 * percent_rank() over (order by days_since_last_active desc)) as integer)) as recency_score,
        least(5, 1 + cast(floor(5 * percent_rank() over (order by frequency_active_days)) as integer)) as frequency_score,
        least(5, 1 + cast(floor(5 * percent_rank() over (order by monetary_revenue)) as integer)) as monetary_score
    from measured

),

segmented as (

    select
        scored.user_id,
        min(rfm_segments.priority) as segment_priority
    from scored
    left join {{ ref('rfm_segments') }} as rfm_segments
        on scored.recency_score between rfm_segments.recency_min and rfm_segments.recency_max
        and scored.frequency_score between rfm_segments.frequency_min and rfm_segments.frequency_max
    group by scored.user_id

)

select
    scored.user_id,
    scored.first_active_at,
    scored.last_active_at,
    scored.days_since_last_active,
    case
        when scored.days_since_first_active < {{ var('active_recent_days') }} then 'new'
        when scored.days_since_last_active < {{ var('active_recent_days') }} then 'active'
        when scored.days_since_last_active < {{ var('lapsed_days') }} then 'at_risk'
        else 'lapsed'
    end as lifecycle_stage,
    scored.days_since_last_active < {{ var('active_recent_days') }} as is_active_recent,
    scored.days_since_last_active >= {{ var('lapsed_days') }} as is_lapsed,
    scored.sessions_recent >= {{ var('high_frequency_sessions') }} as is_high_frequency,
    scored.sessions_recent,
    scored.frequency_active_days,
    scored.monetary_revenue,
    scored.recency_score,
    scored.frequency_score,
    scored.monetary_score,
    coalesce(rfm_segments.rfm_segment, 'unclassified') as rfm_segment,
    scored.engagement_score
from scored
inner join segmented on scored.user_id = segmented.user_id
left join {{ ref('rfm_segments') }} as rfm_segments on segmented.segment_priority = rfm_segments.priority
