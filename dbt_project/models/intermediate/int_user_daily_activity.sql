-- One row per user and active day (reporting time zone): the building block of retention, lifecycle and KPIs.
-- Incremental per user: see macros/incremental_users.sql.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_user_daily_activity')) }}

with activity_events as (

    select * from {{ ref('int_activity_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

)

select
    user_id,
    event_date as activity_date,
    count(*) as events,
    min(event_at) as first_event_at,
    max(event_at) as last_event_at,
    sum(case when event_name = 'order_completed' then 1 else 0 end) as orders,
    coalesce(sum(case when event_name in ('order_completed', 'order_refunded') then revenue end), 0) as revenue,
    {{ staged_through() }} as staged_through
from activity_events
group by user_id, event_date
