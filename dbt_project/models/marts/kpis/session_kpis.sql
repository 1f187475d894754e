-- Sessions per day (reporting time zone of the session start): count, users, duration and bounce rate.
select
    session_date,
    count(*) as sessions,
    count(distinct user_id) as users,
    count(*) * 1.0e0 / count(distinct user_id) as sessions_per_user,
    avg(duration_seconds) as avg_duration_seconds,
    avg(events) as avg_events,
    sum(case when is_bounce then 1 else 0 end) as bounces,
    sum(case when is_bounce then 1 else 0 end) * 1.0e0 / count(*) as bounce_rate
from {{ ref('int_sessions') }}
group by session_date
