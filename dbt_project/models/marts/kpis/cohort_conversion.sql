-- Conversion per weekly first_ever cohort: the share of the cohort that placed an order within N days of its
-- first activity (N in var conversion_windows_days); a window still open at as_of is flagged incomplete.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

members as (

    select
        users.user_id,
        users.first_active_at,
        cast({{ dbt.date_trunc('week', 'users.first_active_date') }} as date) as cohort_start
    from {{ ref('int_users') }} as users

),

orders as (

    select activity_events.user_id, activity_events.event_at
    from {{ ref('int_activity_events') }} as activity_events
    where activity_events.event_name = 'order_completed'

),

windows as (

    {% for days in var('conversion_windows_days') %}
    select {{ days }} as window_days
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

member_conversions as (

    select
        members.cohort_start,
        members.user_id,
        members.first_active_at,
        windows.window_days,
        max(case when orders.user_id is not null then 1 else 0 end) as converted
    from members
    cross join windows
    left join orders
        on members.user_id = orders.user_id
        and orders.event_at >= members.first_active_at
        and orders.event_at <= {{ dbt.dateadd('second', 'windows.window_days * 86400', 'members.first_active_at') }}
    group by members.cohort_start, members.user_id, members.first_active_at, windows.window_days

)

select
    member_conversions.cohort_start,
    member_conversions.window_days,
    count(*) as cohort_size,
    sum(member_conversions.converted) as converted_users,
    sum(member_conversions.converted) * 1.0e0 / count(*) as conversion_rate,
    {{ dbt.dateadd('second', 'member_conversions.window_days * 86400', 'max(member_conversions.first_active_at)') }}
        <= max(as_of_point.as_of) as is_complete
from member_conversions
cross join as_of_point
group by member_conversions.cohort_start, member_conversions.window_days
