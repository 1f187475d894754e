-- Activity events only (var non_activity_events excluded), the input of every "was the user active" question.
select
    message_id,
    user_id,
    event_name,
    event_at,
    event_at_local,
    event_date,
    revenue,
    properties
from {{ ref('stg_events') }}
where is_activity
