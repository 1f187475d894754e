-- Sessions: a user's activity events with gaps of at most var session_timeout_minutes between them.
-- Incremental per user: see macros/incremental_users.sql.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_sessions')) }}

with ordered_events as (

    select
        user_id,
        message_id,
        event_name,
        event_at,
        lag(event_at) over (partition by user_id order by event_at, message_id) as previous_event_at
    from {{ ref('int_activity_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

session_starts as (

    select
        *,
        case
            when previous_event_at is null
                or {{ dbt.datediff('previous_event_at', 'event_at', 'second') }}
                   > {{ var('session_timeout_minutes') * 60 }}
                then 1
            else 0
        end as is_session_start
    from ordered_events

),

numbered_events as (

    select
        *,
        sum(is_session_start) over (
            partition by user_id order by event_at, message_id rows between unbounded preceding and current row
        ) as session_number
    from session_starts

)

select
    {{ dbt.concat(['user_id', "'#'", dbt.cast('session_number', dbt.type_string())]) }} as session_id,
    user_id,
    session_number,
    min(event_at) as session_start_at,
    max(event_at) as session_end_at,
    cast({{ to_reporting_time('min(event_at)') }} as date) as session_date,
    {{ dbt.datediff('min(event_at)', 'max(event_at)', 'second') }} as duration_seconds,
    count(*) as events,
    sum(case when event_name in ('page_viewed', 'screen_viewed') then 1 else 0 end) as page_views,
    count(*) = 1 as is_bounce,
    {{ staged_through() }} as staged_through
from numbered_events
group by user_id, session_number
