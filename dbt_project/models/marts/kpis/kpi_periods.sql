-- marts.daily_kpis rolled up to days, weeks (from Monday) and months: one row per grain and period.
with daily as (

    select * from {{ ref('daily_kpis') }}

),

grains as (

    select 'day' as grain
    union all select 'week'
    union all select 'month'

),

days_in_periods as (

    select
        grains.grain,
        case grains.grain
            when 'day' then daily.activity_date
            when 'week' then cast({{ dbt.date_trunc('week', 'daily.activity_date') }} as date)
            else cast({{ dbt.date_trunc('month', 'daily.activity_date') }} as date)
        end as period_start,
        daily.*
    from daily
    cross join grains

),

last_days as (

    select grain, period_start, max(activity_date) as last_date
    from days_in_periods
    group by grain, period_start

),

period_totals as (

    select
        grain,
        period_start,
        count(*) as days,
        avg(cast(dau as double)) as dau,
        avg(stickiness) as stickiness,
        sum(new_users) as new_users,
        sum(orders) as orders,
        sum(revenue) as revenue,
        -- the share of active user-days with an order: daily rates weighted by DAU (a day keeps its own rate)
        case
            when count(*) = 1 then max(conversion_rate)
            else sum(conversion_rate * dau) / nullif(sum(case when conversion_rate is not null then dau end), 0)
        end as conversion_rate
    from days_in_periods
    group by grain, period_start

)

select
    period_totals.grain,
    period_totals.period_start,
    period_totals.days,
    period_totals.dau,
    cast(last_day.wau as double) as wau,
    cast(last_day.mau as double) as mau,
    period_totals.stickiness,
    period_totals.new_users,
    period_totals.orders,
    period_totals.revenue,
    period_totals.conversion_rate
from period_totals
inner join last_days
    on period_totals.grain = last_days.grain and period_totals.period_start = last_days.period_start
inner join days_in_periods as last_day
    on last_day.grain = last_days.grain
    and last_day.period_start = last_days.period_start
    and last_day.activity_date = last_days.last_date
