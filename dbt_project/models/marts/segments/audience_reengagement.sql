-- Re-engagement: a user enters when var reengagement_inactive_days (14) pass without activity, once per
-- inactivity gap, and leaves when active again. Built on sessions (gaps inside a session are minutes).
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

sessions as (

    select
        user_id,
        session_end_at,
        lead(session_start_at) over (partition by user_id order by session_start_at) as next_session_at
    from {{ ref('int_sessions') }}

),

gaps as (

    select
        user_id,
        session_end_at as last_active_at,
        {{ dbt.dateadd('day', var('reengagement_inactive_days'), 'session_end_at') }} as entered_at,
        next_session_at
    from sessions

)

select
    'reengagement' as audience,
    gaps.user_id,
    gaps.entered_at,
    gaps.next_session_at as exited_at,
    gaps.last_active_at,
    {{ dbt.datediff('gaps.last_active_at', 'coalesce(gaps.next_session_at, as_of_point.as_of)', 'day') }}
        as inactive_days
from gaps
cross join as_of_point
where gaps.entered_at <= as_of_point.as_of
  and (gaps.next_session_at is null or gaps.next_session_at > gaps.entered_at)
