-- Cumulative revenue per cohort user (LTV) of weekly first_ever cohorts by calendar week since the cohort
-- started: revenue of the cohort's members up to and including period k divided by the cohort size.
with as_of_point as (

    select as_of_local, cast({{ dbt.date_trunc('week', 'as_of_date') }} as date) as as_of_week from {{ ref('int_as_of') }}

),

members as (

    select users.user_id, cast({{ dbt.date_trunc('week', 'users.first_active_date') }} as date) as cohort_start
    from {{ ref('int_users') }} as users

),

cohorts as (

    select cohort_start, count(*) as cohort_size from members group by cohort_start

),

revenue_per_period as (

    select
        members.cohort_start,
        {{ dbt.datediff('members.cohort_start', 'cast(' ~ dbt.date_trunc('week', 'daily.activity_date') ~ ' as date)', 'week') }}
            as period_number,
        sum(daily.revenue) as revenue,
        sum(daily.orders) as orders
    from members
    inner join {{ ref('int_user_daily_activity') }} as daily on members.user_id = daily.user_id
    group by 1, 2

),

cohort_periods as (

    select cohorts.cohort_start, cohorts.cohort_size, period_series.n as period_number, as_of_point.as_of_local
    from cohorts
    cross join as_of_point
    -- 6,000 weeks: from ingestion's earliest event time (2000-01-01) on for a century, so that an old (valid)
    -- client timestamp never cuts its cohort's periods short of as_of
    inner join ({{ integer_series(6000) }}) as period_series
        on period_series.n <= {{ dbt.datediff('cohorts.cohort_start', 'as_of_point.as_of_week', 'week') }}

)

select
    cohort_periods.cohort_start,
    cohort_periods.period_number,
    cohort_periods.cohort_size,
    coalesce(revenue_per_period.revenue, 0) as revenue,
    coalesce(revenue_per_period.orders, 0) as orders,
    sum(coalesce(revenue_per_period.revenue, 0)) over (
        partition by cohort_periods.cohort_start order by cohort_periods.period_number
        rows between unbounded preceding and current row
    ) as cumulative_revenue,
    -- in double on both engines (a decimal divided by an integer is a decimal on Spark)
    cast(sum(coalesce(revenue_per_period.revenue, 0)) over (
        partition by cohort_periods.cohort_start order by cohort_periods.period_number
        rows between unbounded preceding and current row
    ) as double) / cohort_periods.cohort_size as ltv_per_user,
    cast({{ dbt.dateadd('week', 'cohort_periods.period_number + 1', 'cohort_periods.cohort_start') }} as timestamp)
        <= cohort_periods.as_of_local as is_complete
from cohort_periods
left join revenue_per_period
    on cohort_periods.cohort_start = revenue_per_period.cohort_start
    and cohort_periods.period_number = revenue_per_period.period_number
