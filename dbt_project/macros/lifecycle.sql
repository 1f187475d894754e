{#-
    Lifecycle status counts per calendar period at one grain. For period p and user u:
    new (first active period is p), returning (active in p-1 and p), resurrecting (active in p, not in p-1,
    not new), dormant (active in p-1, not in p). Periods run from the first activity to the one holding as_of.
-#}
{% macro lifecycle_for_grain(grain) %}
    with as_of_point as (

        select cast({{ dbt.date_trunc(grain, 'as_of_date') }} as date) as as_of_period from {{ ref('int_as_of') }}

    ),

    user_periods as (

        select distinct daily.user_id, cast({{ dbt.date_trunc(grain, 'daily.activity_date') }} as date) as period_start
        from {{ ref('int_user_daily_activity') }} as daily

    ),

    flagged_periods as (

        select
            user_id,
            period_start,
            min(period_start) over (partition by user_id) as first_period,
            lag(period_start) over (partition by user_id order by period_start) as previous_active_period,
            lead(period_start) over (partition by user_id order by period_start) as next_active_period
        from user_periods

    ),

    statuses as (

        select
            period_start,
            case
                when period_start = first_period then 'new'
                when previous_active_period = {{ dbt.dateadd(grain, -1, 'period_start') }} then 'returning'
                else 'resurrecting'
            end as status
        from flagged_periods

        union all

        -- the period after an active one, when the user is not active in it: dormant there
        select {{ dbt.dateadd(grain, 1, 'flagged_periods.period_start') }} as period_start, 'dormant' as status
        from flagged_periods
        cross join as_of_point
        where (flagged_periods.next_active_period is null
               or flagged_periods.next_active_period > {{ dbt.dateadd(grain, 1, 'flagged_periods.period_start') }})
          and {{ dbt.dateadd(grain, 1, 'flagged_periods.period_start') }} <= as_of_point.as_of_period

    )

    select '{{ grain }}' as grain, cast(period_start as date) as period_start, status, count(*) as users
    from statuses
    group by period_start, status
{% endmacro %}
