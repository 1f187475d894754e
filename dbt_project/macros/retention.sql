{#-
    Cohort retention at one calendar grain ('day', 'week' or 'month') for first_ever cohorts.

    activity: relation with one row per user and active day (user_id, activity_date in the reporting time zone,
    first_event_at in UTC). as_of: relation with one row (as_of, as_of_local, as_of_date).

    A user's cohort is the period holding their first active day; a return on day d falls in period
    k = datediff(grain, cohort_start, trunc(grain, d)). Output is dense: one row per cohort and period from 0 to
    the period holding as_of, zeros included. A cell is complete once period k has ended by as_of for every
    member; with calendar windows that instant is the same for the whole cohort: cohort_start + (k + 1) grains.
    Activity after as_of is ignored, so pinning var as_of reproduces an earlier state.
-#}
{% macro cohort_retention_for_grain(grain, activity, as_of) %}
    {%- set max_periods = {'day': 4000, 'week': 600, 'month': 150}[grain] -%}
    with as_of_point as (

        select
            as_of,
            as_of_local,
            cast({{ dbt.date_trunc(grain, 'as_of_date') }} as date) as as_of_period_start
        from {{ as_of }}

    ),

    activity_until_as_of as (

        select activity.user_id, activity.activity_date
        from {{ activity }} as activity
        cross join as_of_point
        where activity.first_event_at <= as_of_point.as_of

    ),

    user_cohorts as (

        select user_id, cast({{ dbt.date_trunc(grain, 'min(activity_date)') }} as date) as cohort_start
        from activity_until_as_of
        group by user_id

    ),

    user_active_periods as (

        select distinct
            activity_until_as_of.user_id,
            user_cohorts.cohort_start,
            {{ dbt.datediff(
                'user_cohorts.cohort_start',
                'cast(' ~ dbt.date_trunc(grain, 'activity_until_as_of.activity_date') ~ ' as date)',
                grain) }} as period_number
        from activity_until_as_of
        inner join user_cohorts on activity_until_as_of.user_id = user_cohorts.user_id

    ),

    cohort_sizes as (

        select cohort_start, count(*) as cohort_size
        from user_cohorts
        group by cohort_start

    ),

    cohort_periods as (

        select
            cohort_sizes.cohort_start,
            cohort_sizes.cohort_size,
            period_series.n as period_number,
            as_of_point.as_of_local
        from cohort_sizes
        cross join as_of_point
        inner join ({{ integer_series(max_periods) }}) as period_series
            on period_series.n <= {{ dbt.datediff('cohort_sizes.cohort_start', 'as_of_point.as_of_period_start', grain) }}

    ),

    returns_per_period as (

        select cohort_start, period_number, count(*) as retained_users
        from user_active_periods
        group by cohort_start, period_number

    ),

    last_active_per_user as (

        select cohort_start, user_id, max(period_number) as last_active_period
        from user_active_periods
        group by cohort_start, user_id

    ),

    users_last_active_per_period as (

        select cohort_start, last_active_period as period_number, count(*) as users_last_active
        from last_active_per_user
        group by cohort_start, last_active_period

    ),

    retention_counts as (

        select
            cohort_periods.cohort_start,
            cohort_periods.period_number,
            cohort_periods.cohort_size,
            cohort_periods.as_of_local,
            coalesce(returns_per_period.retained_users, 0) as retained_users,
            -- active in period k or later = users whose last active period is k or later
            sum(coalesce(users_last_active_per_period.users_last_active, 0)) over (
                partition by cohort_periods.cohort_start
                order by cohort_periods.period_number desc
                rows between unbounded preceding and current row
            ) as retained_users_unbounded
        from cohort_periods
        left join returns_per_period
            on cohort_periods.cohort_start = returns_per_period.cohort_start
            and cohort_periods.period_number = returns_per_period.period_number
        left join users_last_active_per_period
            on cohort_periods.cohort_start = users_last_active_per_period.cohort_start
            and cohort_periods.period_number = users_last_active_per_period.period_number

    )

    select
        '{{ grain }}' as grain,
        cohort_start,
        period_number,
        cohort_size,
        retained_users,
        retained_users * 1.0 / cohort_size as retention_rate,
        retained_users_unbounded,
        retained_users_unbounded * 1.0 / cohort_size as retention_rate_unbounded,
        cast({{ dbt.dateadd(grain, 'period_number + 1', 'cohort_start') }} as timestamp) <= as_of_local
            as is_complete
    from retention_counts
{% endmacro %}
