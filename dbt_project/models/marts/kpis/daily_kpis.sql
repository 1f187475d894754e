-- One row per day from the first activity to as_of: active users over 1, 7 and 30 days, new users, orders,
-- revenue and the share of the day's active users who ordered.
with as_of_point as (

    select as_of_date from {{ ref('int_as_of') }}

),

activity as (

    select * from {{ ref('int_user_daily_activity') }}

),

calendar as (

    select {{ dbt.dateadd('day', 'day_series.n', 'bounds.first_date') }} as activity_date
    from (select min(activity_date) as first_date from activity) as bounds
    cross join as_of_point
    -- 40,000 days: from ingestion's earliest event time (2000-01-01) on for a century, so that an old (valid)
    -- client timestamp can never cut the recent days off the calendar
    inner join ({{ integer_series(40000) }}) as day_series
        on day_series.n <= {{ dbt.datediff('bounds.first_date', 'as_of_point.as_of_date', 'day') }}

),

-- A user counts in the trailing W-day window of every date from an active day until the next active day or
-- W days later, whichever is first; those spans never overlap, so +1/-1 markers summed over time give the count.
next_active as (

    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_activity_date
    from activity

),

window_markers as (

    {% for window_days in [7, 30] %}
    select {{ window_days }} as window_days, activity_date as marker_date, 1 as change
    from next_active
    union all
    select
        {{ window_days }} as window_days,
        case
            when next_activity_date is not null and next_activity_date < {{ dbt.dateadd('day', window_days, 'activity_date') }}
                then next_activity_date
            else {{ dbt.dateadd('day', window_days, 'activity_date') }}
        end as marker_date,
        -1 as change
    from next_active
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

window_changes as (

    select window_days, cast(marker_date as date) as marker_date, sum(change) as change
    from window_markers
    group by window_days, cast(marker_date as date)

),

window_counts as (

    select
        calendar.activity_date,
        sum(case when window_changes.window_days = 7 then window_changes.change else 0 end) as wau_change,
        sum(case when window_changes.window_days = 30 then window_changes.change else 0 end) as mau_change
    from calendar
    left join window_changes on cast(calendar.activity_date as date) = window_changes.marker_date
    group by calendar.activity_date

),

daily_totals as (

    select
        activity_date,
        count(*) as dau,
        cast(sum(orders) as bigint) as orders,
        cast(sum(revenue) as decimal(38, 4)) as revenue,
        sum(case when orders > 0 then 1 else 0 end) as ordering_users
    from activity
    group by activity_date

),

new_users as (

    select first_active_date, count(*) as new_users
    from {{ ref('int_users') }}
    group by first_active_date

)

select
    cast(calendar.activity_date as date) as activity_date,
    coalesce(daily_totals.dau, 0) as dau,
    cast(sum(window_counts.wau_change) over (order by calendar.activity_date rows between unbounded preceding and current row) as bigint) as wau,
    cast(sum(window_counts.mau_change) over (order by calendar.activity_date rows between unbounded preceding and current row) as bigint) as mau,
    coalesce(daily_totals.dau, 0) * 1.0e0
        / nullif(sum(window_counts.mau_change) over (order by calendar.activity_date rows between unbounded preceding and current row), 0)
        as stickiness,
    coalesce(new_users.new_users, 0) as new_users,
    coalesce(daily_totals.orders, 0) as orders,
    coalesce(daily_totals.revenue, 0) as revenue,
    coalesce(daily_totals.ordering_users, 0) * 1.0e0 / nullif(daily_totals.dau, 0) as conversion_rate
from calendar
inner join window_counts on calendar.activity_date = window_counts.activity_date
left join daily_totals on cast(calendar.activity_date as date) = daily_totals.activity_date
left join new_users on cast(calendar.activity_date as date) = new_users.first_active_date
