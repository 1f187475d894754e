-- One row per user and active day (reporting time zone): the building block of retention, lifecycle and KPIs.
with activity_events as (

    select * from {{ ref('int_activity_events') }}

)

select
    user_id,
    event_date as activity_date,
    count(*) as events,
    min(event_at) as first_event_at,
    max(event_at) as last_event_at,
    sum(case when event_name = 'order_completed' then 1 else 0 end) as orders,
    coalesce(sum(case when event_name in ('order_completed', 'order_refunded') then revenue end), 0) as revenue
from activity_events
group by user_id, event_date
