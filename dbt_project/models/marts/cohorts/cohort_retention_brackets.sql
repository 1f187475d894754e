-- Bracket retention: the share of a weekly first_ever cohort active anywhere in a range of days after the
-- member's first active day (ranges in seed retention_brackets), e.g. "active on any of days 8-14".
with as_of_point as (

    select as_of_date from {{ ref('int_as_of') }}

),

members as (

    select
        user_id,
        first_active_date,
        cast({{ dbt.date_trunc('week', 'first_active_date') }} as date) as cohort_start
    from {{ ref('int_users') }}

),

member_active_days as (

    select distinct
        members.user_id,
        members.cohort_start,
        {{ dbt.datediff('members.first_active_date', 'daily.activity_date', 'day') }} as day_number
    from members
    inner join {{ ref('int_user_daily_activity') }} as daily on members.user_id = daily.user_id

),

cohorts as (

    select cohort_start, count(*) as cohort_size, max(first_active_date) as last_first_active_date
    from members
    group by cohort_start

),

bracket_returns as (

    select
        member_active_days.cohort_start,
        brackets.bracket,
        count(distinct member_active_days.user_id) as retained_users
    from member_active_days
    inner join {{ ref('retention_brackets') }} as brackets
        on member_active_days.day_number between brackets.first_day and brackets.last_day
    group by member_active_days.cohort_start, brackets.bracket

)

select
    cohorts.cohort_start,
    brackets.bracket,
    brackets.first_day,
    brackets.last_day,
    cohorts.cohort_size,
    coalesce(bracket_returns.retained_users, 0) as retained_users,
    coalesce(bracket_returns.retained_users, 0) * 1.0e0 / cohorts.cohort_size as retention_rate,
    -- complete once the bracket's last day has ended for the cohort's latest member
    {{ dbt.dateadd('day', 'brackets.last_day', 'cohorts.last_first_active_date') }} < as_of_point.as_of_date
        as is_complete
from cohorts
cross join {{ ref('retention_brackets') }} as brackets
cross join as_of_point
left join bracket_returns
    on cohorts.cohort_start = bracket_returns.cohort_start
    and brackets.bracket = bracket_returns.bracket
-- brackets that start after as_of have nothing to show yet
where {{ dbt.dateadd('day', 'brackets.first_day', 'cohorts.cohort_start') }} <= as_of_point.as_of_date
