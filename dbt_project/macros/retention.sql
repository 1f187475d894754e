{#-
    cohort_retention: the retention matrix every cohorts mart is made of; call it from a model to get a custom one.

    start          'first_ever'     each user once, at their first activity (the default)
                   'first_matching' each user once, at their first event named in start_events
                   'recurring'      a user joins every cohort period in which they did a start event
    start_events   normalised event names for 'first_matching' and 'recurring', e.g. ['signed_up']
    cohort_grain   'day', 'week' (Monday start) or 'month': how start times are bucketed into cohorts
    window_days    none: calendar windows, period k = datediff(cohort_grain, cohort_start, trunc(activity day));
                   L (e.g. 1, 7, 30): rolling windows from each member's own start, k = floor((t - t0) / L days)
    dimension      a column of int_users (first_touch_channel, country, plan, ...) to split cohorts by; beyond the
                   var label_max_values values with the most users (all users of int_users), the rest are one
                   '(other)' value ('(invalid)' and 'unknown' always stay; macros/labels.sql)

    Output: [dimension_value,] cohort_start, period_number, cohort_size, returned_in_period_0, retained_users,
    retention_rate, retained_users_unbounded, retention_rate_unbounded, is_complete. Dense from period 0 to the
    period holding as_of. Period 0 counts every member (they did the start event in it); returned_in_period_0 is
    the members active again in period 0 after their start event. A cell is complete once period k has ended by
    as_of for every member. Activity after as_of is ignored, and so is a member's activity before their start.
-#}
{% macro cohort_retention(start='first_ever', start_events=none, cohort_grain='week', window_days=none, dimension=none) %}
    {%- if start not in ('first_ever', 'first_matching', 'recurring') -%}
        {{ exceptions.raise_compiler_error("cohort_retention: start must be first_ever, first_matching or recurring, not " ~ start) }}
    {%- endif -%}
    {%- if start != 'first_ever' and not start_events -%}
        {{ exceptions.raise_compiler_error("cohort_retention: start '" ~ start ~ "' needs start_events") }}
    {%- endif -%}
    {%- set max_periods = 4000 if (window_days is none and cohort_grain == 'day') or (window_days or 7) < 7 else 600 -%}
    {%- set event_list -%}
        {%- for name in (start_events or []) %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
    {%- endset -%}
    with as_of_point as (

        select as_of, as_of_local, as_of_date from {{ ref('int_as_of') }}

    ),

    events_until_as_of as (

        -- int_activity_events stops at as_of already
        select user_id, event_name, event_at, event_date from {{ ref('int_activity_events') }}

    ),

    member_starts as (

        {%- if start == 'first_ever' %}
        -- daily rows hold every first event, at a tenth of the rows of the events
        select user_id, min(first_event_at) as start_at
        from {{ ref('int_user_daily_activity') }}
        group by user_id
        {%- elif start == 'first_matching' %}
        select user_id, min(event_at) as start_at
        from events_until_as_of
        where event_name in ({{ event_list }})
        group by user_id
        {%- else %}
        select user_id, min(event_at) as start_at
        from events_until_as_of
        where event_name in ({{ event_list }})
        group by user_id, {{ dbt.date_trunc(cohort_grain, 'event_date') }}
        {%- endif %}

    ),

    cohort_members as (

        select
            member_starts.user_id,
            member_starts.start_at,
            cast({{ dbt.date_trunc(cohort_grain, 'cast(' ~ to_reporting_time('member_starts.start_at') ~ ' as date)') }} as date)
                as cohort_start,
            cast({{ to_reporting_time('member_starts.start_at') }} as date) as start_date
            {%- if dimension %},
            -- a client value (a trait): beyond the var label_max_values values with the most users, '(other)'
            case when dimension_ranks.is_folded then '(other)' else users.{{ dimension }} end as dimension_value
            {%- endif %}
        from member_starts
        {%- if dimension %}
        inner join {{ ref('int_users') }} as users on member_starts.user_id = users.user_id
        left join (
            {{ label_ranks(ref('int_users'), dimension, 'user_id', reserved=['(invalid)', 'unknown']) }}
        ) as dimension_ranks on users.{{ dimension }} = dimension_ranks.label
        {%- endif %}

    ),

    {% if window_days is none -%}
    member_activity as (

        -- calendar windows: active days are enough, and much fewer than events
        select
            cohort_members.user_id,
            cohort_members.cohort_start,
            {{ dbt.datediff('cohort_members.cohort_start',
                            'cast(' ~ dbt.date_trunc(cohort_grain, 'daily.activity_date') ~ ' as date)',
                            cohort_grain) }} as period_number,
            daily.last_event_at > cohort_members.start_at as is_after_start
        from cohort_members
        inner join {{ ref('int_user_daily_activity') }} as daily
            on cohort_members.user_id = daily.user_id
            and daily.last_event_at >= cohort_members.start_at

    ),
    {%- else -%}
    member_days as (

        -- Rolling windows run on each member's own clock, from daily rows: a local day spans at most 25 hours,
        -- less than two windows of L >= 1 day, so its events fall exactly in the windows of its first and its
        -- last event. On the start day the first event counted is the start itself (earlier ones don't count).
        select
            cohort_members.user_id,
            cohort_members.cohort_start,
            cohort_members.start_at,
            daily.activity_date = cohort_members.start_date as is_start_day,
            case
                when daily.activity_date = cohort_members.start_date then cohort_members.start_at
                else daily.first_event_at
            end as first_at,
            daily.last_event_at as last_at
        from cohort_members
        inner join {{ ref('int_user_daily_activity') }} as daily
            on cohort_members.user_id = daily.user_id
            and daily.activity_date >= cohort_members.start_date

    ),

    member_activity as (

        {%- for bound in ['first_at', 'last_at'] %}
        {% if not loop.first %}union all{% endif %}
        select
            user_id,
            cohort_start,
            cast(floor({{ dbt.datediff('start_at', bound, 'second') }} / {{ window_days * 86400 }}) as integer)
                as period_number,
            {{ bound }} > start_at as is_after_start
        from member_days
        {%- endfor %}
        {%- if window_days < 2 %}
        -- The one case daily rows can't settle: a start day longer than the window (a 25-hour day, L = 1) whose
        -- last event is in window 1; whether the member came back within window 0 needs that day's events.
        union all
        select member_days.user_id, member_days.cohort_start, 0 as period_number, true as is_after_start
        from member_days
        inner join events_until_as_of
            on member_days.user_id = events_until_as_of.user_id
            and events_until_as_of.event_at > member_days.start_at
            and {{ dbt.datediff('member_days.start_at', 'events_until_as_of.event_at', 'second') }}
                < {{ window_days * 86400 }}
        where member_days.is_start_day
          and {{ dbt.datediff('member_days.start_at', 'member_days.last_at', 'second') }} >= {{ window_days * 86400 }}
        {%- endif %}

    ),
    {%- endif %}

    member_periods as (

        select
            user_id,
            cohort_start,
            period_number,
            max(case when period_number = 0 and is_after_start then 1 else 0 end) as returned_after_start
        from member_activity
        group by user_id, cohort_start, period_number

    ),

    cohorts as (

        select
            {% if dimension %}cohort_members.dimension_value,{% endif %}
            cohort_members.cohort_start,
            count(*) as cohort_size,
            min(cohort_members.start_at) as first_start_at,
            max(cohort_members.start_at) as last_start_at
        from cohort_members
        group by {% if dimension %}cohort_members.dimension_value, {% endif %}cohort_members.cohort_start

    ),

    cohort_periods as (

        select cohorts.*, period_series.n as period_number, as_of_point.as_of, as_of_point.as_of_local
        from cohorts
        cross join as_of_point
        inner join ({{ integer_series(max_periods) }}) as period_series
            {%- if window_days is none %}
            on period_series.n <= {{ dbt.datediff('cohorts.cohort_start',
                                                  'cast(' ~ dbt.date_trunc(cohort_grain, 'as_of_point.as_of_date') ~ ' as date)',
                                                  cohort_grain) }}
            {%- else %}
            on period_series.n * {{ window_days * 86400 }}
                <= {{ dbt.datediff('cohorts.first_start_at', 'as_of_point.as_of', 'second') }}
            {%- endif %}

    ),

    member_periods_with_key as (

        select
            {% if dimension %}cohort_members.dimension_value,{% endif %}
            member_periods.*
        from member_periods
        inner join cohort_members
            on member_periods.user_id = cohort_members.user_id
            and member_periods.cohort_start = cohort_members.cohort_start

    ),

    returns_per_period as (

        select
            {% if dimension %}dimension_value,{% endif %}
            cohort_start,
            period_number,
            count(*) as retained_users,
            sum(returned_after_start) as returned_after_start
        from member_periods_with_key
        group by {% if dimension %}dimension_value, {% endif %}cohort_start, period_number

    ),

    last_active_periods as (

        select
            {% if dimension %}dimension_value,{% endif %}
            cohort_start,
            last_active_period as period_number,
            count(*) as users_last_active
        from (
            select
                {% if dimension %}dimension_value,{% endif %}
                cohort_start,
                user_id,
                max(period_number) as last_active_period
            from member_periods_with_key
            group by {% if dimension %}dimension_value, {% endif %}cohort_start, user_id
        ) as last_active_per_member
        group by {% if dimension %}dimension_value, {% endif %}cohort_start, last_active_period

    ),

    retention_counts as (

        select
            cohort_periods.*,
            coalesce(returns_per_period.retained_users, 0) as retained_users,
            cast(max(case when cohort_periods.period_number = 0 then coalesce(returns_per_period.returned_after_start, 0) end)
                over (partition by {% if dimension %}cohort_periods.dimension_value, {% endif %}cohort_periods.cohort_start)
                as bigint) as returned_in_period_0,
            -- active in period k or later = members whose last active period is k or later
            cast(sum(coalesce(last_active_periods.users_last_active, 0)) over (
                partition by {% if dimension %}cohort_periods.dimension_value, {% endif %}cohort_periods.cohort_start
                order by cohort_periods.period_number desc
                rows between unbounded preceding and current row
            ) as bigint) as retained_users_unbounded
        from cohort_periods
        left join returns_per_period
            on cohort_periods.cohort_start = returns_per_period.cohort_start
            and cohort_periods.period_number = returns_per_period.period_number
            {% if dimension %}and cohort_periods.dimension_value = returns_per_period.dimension_value{% endif %}
        left join last_active_periods
            on cohort_periods.cohort_start = last_active_periods.cohort_start
            and cohort_periods.period_number = last_active_periods.period_number
            {% if dimension %}and cohort_periods.dimension_value = last_active_periods.dimension_value{% endif %}

    )

    select
        {% if dimension %}dimension_value,{% endif %}
        cohort_start,
        period_number,
        cohort_size,
        returned_in_period_0,
        retained_users,
        retained_users * 1.0e0 / cohort_size as retention_rate,
        retained_users_unbounded,
        retained_users_unbounded * 1.0e0 / cohort_size as retention_rate_unbounded,
        {%- if window_days is none %}
        cast({{ dbt.dateadd(cohort_grain, 'period_number + 1', 'cohort_start') }} as timestamp) <= as_of_local
        {%- else %}
        {{ dbt.dateadd('second', '(period_number + 1) * ' ~ (window_days * 86400), 'last_start_at') }} <= as_of
        {%- endif %} as is_complete
    from retention_counts
{% endmacro %}

{#- The measure columns of cohort_retention(), in order, for marts that add key columns in front. -#}
{% macro retention_measures(relation) -%}
    {{ relation }}.cohort_start,
    {{ relation }}.period_number,
    {{ relation }}.cohort_size,
    {{ relation }}.returned_in_period_0,
    {{ relation }}.retained_users,
    {{ relation }}.retention_rate,
    {{ relation }}.retained_users_unbounded,
    {{ relation }}.retention_rate_unbounded,
    {{ relation }}.is_complete
{%- endmacro %}
