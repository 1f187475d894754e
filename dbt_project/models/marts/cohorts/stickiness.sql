-- Stickiness: how many distinct days users were active in each calendar week and month, as "exactly N days"
-- and "at least N days" counts of the period's active users.
{% for grain, max_days in [('week', 7), ('month', 31)] %}
select * from (
    with as_of_point as (

        select as_of_local from {{ ref('int_as_of') }}

    ),

    active_days_per_user as (

        select
            daily.user_id,
            cast({{ dbt.date_trunc(grain, 'daily.activity_date') }} as date) as period_start,
            count(*) as active_days
        from {{ ref('int_user_daily_activity') }} as daily
        group by daily.user_id, cast({{ dbt.date_trunc(grain, 'daily.activity_date') }} as date)

    ),

    periods as (

        select period_start, count(*) as active_users
        from active_days_per_user
        group by period_start

    ),

    users_per_day_count as (

        select period_start, active_days, count(*) as users_exactly
        from active_days_per_user
        group by period_start, active_days

    )

    select
        '{{ grain }}' as grain,
        periods.period_start,
        day_counts.n as active_days,
        periods.active_users,
        coalesce(users_per_day_count.users_exactly, 0) as users_exactly,
        sum(coalesce(users_per_day_count.users_exactly, 0)) over (
            partition by periods.period_start order by day_counts.n desc rows between unbounded preceding and current row
        ) as users_at_least,
        cast({{ dbt.dateadd(grain, 1, 'periods.period_start') }} as timestamp) <= as_of_point.as_of_local as is_complete
    from periods
    cross join as_of_point
    inner join ({{ integer_series(max_days + 1) }}) as day_counts
        on day_counts.n between 1 and {{ dbt.datediff('periods.period_start', dbt.dateadd(grain, 1, 'periods.period_start'), 'day') }}
    left join users_per_day_count
        on periods.period_start = users_per_day_count.period_start
        and day_counts.n = users_per_day_count.active_days
) as {{ grain }}_stickiness
{% if not loop.last %}union all{% endif %}
{% endfor %}
