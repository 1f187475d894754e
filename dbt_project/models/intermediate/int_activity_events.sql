-- Activity events up to as_of (var non_activity_events excluded): the input of every "was the user active"
-- question. Cutting at as_of here, once, is what lets a pinned var as_of reproduce an earlier state everywhere.
select
    events.message_id,
    events.user_id,
    events.event_name,
    events.event_at,
    events.event_at_local,
    events.event_date,
    events.revenue,
    events.properties,
    events.context
from {{ ref('stg_events') }} as events
cross join {{ ref('int_as_of') }} as as_of_point
where events.is_activity and events.event_at <= as_of_point.as_of
