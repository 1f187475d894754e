-- Each funnel entry's path, one row per step reached (macro funnel_journeys): the funnels of seeds funnels and
-- funnel_steps without a config_error, over their matched events (int_funnel_step_events: activity events up to
-- as_of). An entry is a user's first step-1 event (any order: the first event matching any step), and with entry
-- 'recurring' also its first one in each day, week and month (the is_*_entry flags say which grains count it).
-- Incremental per user (macros/incremental_users.sql); every user is recomputed when the funnel definitions change.
-- depends_on: {{ ref('stg_events') }}
-- depends_on: {{ ref('int_funnel_step_events') }}
{{ config(**per_user_incremental_config('int_funnel_journeys', definitions='funnels')) }}

with definitions as (

    select * from {{ ref('int_funnel_definitions') }}
    where config_error is null

),

step_events as {{ materialized_cte() }} (

    {%- if target.type == 'spark' %}
    select funnel_id, step_kind, step_number, user_id, message_id, event_rank, event_at, event_at_local, breakdown_value
    from {{ ref('int_funnel_step_events') }}
    {%- if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {%- endif %}
    {%- else %}
    -- the rows of the view int_funnel_step_events, computed here so that an incremental run reads only its users'
    -- events (DuckDB does not push the users into the view's windows and groupings)
    {{ funnel_step_events(users_in_scope() if is_incremental() else none) }}
    {%- endif %}

),

entry_candidates as (

    select
        step_events.funnel_id,
        step_events.user_id,
        step_events.message_id,
        step_events.event_rank,
        step_events.event_at,
        step_events.breakdown_value,
        cast(step_events.event_at_local as date) as entry_date,
        definitions.ordering,
        definitions.entry,
        definitions.window_seconds
    from step_events
    inner join definitions on step_events.funnel_id = definitions.funnel_id
    where step_events.step_kind = 'step' and (step_events.step_number = 1 or definitions.ordering = 'any')

),

period_firsts as (

    -- each user's first candidate (by time, then message id) of each day, or with entry first of its whole history:
    -- one aggregate that leaves a row per user and day, from which the week, month and history firsts follow
    select
        firsts.funnel_id,
        firsts.user_id,
        firsts.entry_date,
        definitions.entry,
        definitions.ordering,
        definitions.window_seconds,
        firsts.first_candidate.entered_at,
        firsts.first_candidate.entry_id,
        firsts.first_candidate.entry_rank,
        firsts.first_candidate.breakdown_value
    from (
        select
            funnel_id,
            user_id,
            case when entry = 'recurring' then entry_date end as entry_date,
            {{ first_row([
                ('entered_at', 'event_at'), ('entry_id', 'message_id'), ('entry_rank', 'event_rank'),
                ('breakdown_value', 'breakdown_value'),
            ]) }} as first_candidate
        from entry_candidates
        group by funnel_id, user_id, case when entry = 'recurring' then entry_date end
    ) as firsts
    inner join definitions on firsts.funnel_id = definitions.funnel_id

),

ranked_period_firsts as (

    select
        *,
        row_number() over (partition by funnel_id, user_id order by entered_at, entry_id) as rank_in_history,
        row_number() over (
            partition by funnel_id, user_id, {{ dbt.date_trunc('week', 'entry_date') }} order by entered_at, entry_id
        ) as rank_in_week,
        row_number() over (
            partition by funnel_id, user_id, {{ dbt.date_trunc('month', 'entry_date') }} order by entered_at, entry_id
        ) as rank_in_month
    from period_firsts

),

entries as (

    -- with entry first the one row is every grain's entry; with entry recurring each day's first is its day's, and
    -- the first of its week and month too when no earlier day of them had one
    select
        funnel_id,
        user_id,
        entry_id,
        entry_rank,
        entered_at,
        {{ dbt.dateadd('second', 'window_seconds', 'entered_at') }} as window_ends_at,
        ordering,
        breakdown_value,
        rank_in_history = 1 as is_first_entry,
        true as is_day_entry,
        rank_in_week = 1 as is_week_entry,
        rank_in_month = 1 as is_month_entry
    from ranked_period_firsts

),

journey_steps as (

    {{ funnel_journeys('step_events', 'entries', var('funnel_max_steps')) }}

),

exclusions as (

    -- an exclusion event after step n and before step n + 1 (or, when n + 1 was not reached, before the window
    -- ends) disqualifies the entry
    select distinct reached.funnel_id, reached.user_id, reached.entry_id
    from journey_steps as reached
    inner join entries
        on reached.funnel_id = entries.funnel_id
        and reached.user_id = entries.user_id
        and reached.entry_id = entries.entry_id
    inner join step_events as excluded
        on excluded.funnel_id = reached.funnel_id
        and excluded.user_id = reached.user_id
        and excluded.step_kind = 'exclusion'
        and excluded.step_number = reached.step_number
    left join journey_steps as next_step
        on next_step.funnel_id = reached.funnel_id
        and next_step.user_id = reached.user_id
        and next_step.entry_id = reached.entry_id
        and next_step.step_number = reached.step_number + 1
    where {{ comes_after('excluded.event_at', 'excluded.message_id', 'reached.reached_at', 'reached.message_id') }}
        and (
            {{ comes_after('next_step.reached_at', 'next_step.message_id', 'excluded.event_at', 'excluded.message_id') }}
            or (next_step.step_number is null and excluded.event_at <= entries.window_ends_at)
        )

),

journey_summaries as (

    select
        funnel_id,
        user_id,
        entry_id,
        max(step_number) as last_step_number
    from journey_steps
    group by funnel_id, user_id, entry_id

),

attributed as (

    -- the breakdown value of a property: or context: breakdown, by the funnel's attribution
    select
        summaries.funnel_id,
        summaries.user_id,
        summaries.entry_id,
        summaries.last_step_number,
        case
            when definitions.breakdown_kind not in ('property', 'context') then cast(null as {{ dbt.type_string() }})
            when definitions.attribution = 'first_touch' then coalesce(first_step.breakdown_value, '(none)')
            when definitions.attribution = 'last_touch' then coalesce(last_step.breakdown_value, '(none)')
            when attributed_step.step_number is null then '(not reached)'
            else coalesce(attributed_step.breakdown_value, '(none)')
        end as breakdown_value
    from journey_summaries as summaries
    inner join definitions on summaries.funnel_id = definitions.funnel_id
    inner join journey_steps as first_step
        on first_step.funnel_id = summaries.funnel_id
        and first_step.user_id = summaries.user_id
        and first_step.entry_id = summaries.entry_id
        and first_step.step_number = 1
    inner join journey_steps as last_step
        on last_step.funnel_id = summaries.funnel_id
        and last_step.user_id = summaries.user_id
        and last_step.entry_id = summaries.entry_id
        and last_step.step_number = summaries.last_step_number
    left join journey_steps as attributed_step
        on attributed_step.funnel_id = summaries.funnel_id
        and attributed_step.user_id = summaries.user_id
        and attributed_step.entry_id = summaries.entry_id
        and attributed_step.step_number = definitions.attribution_step

)

select
    journey_steps.funnel_id,
    journey_steps.user_id,
    entries.entered_at,
    entries.window_ends_at,
    entries.is_first_entry,
    entries.is_day_entry,
    entries.is_week_entry,
    entries.is_month_entry,
    journey_steps.step_number,
    journey_steps.reached_at,
    {{ seconds_between('previous_step.reached_at', 'journey_steps.reached_at') }} as seconds_from_previous,
    {{ seconds_between('entries.entered_at', 'journey_steps.reached_at') }} as seconds_from_entry,
    attributed.last_step_number,
    exclusions.user_id is not null as is_excluded,
    attributed.breakdown_value,
    ({{ definitions_fingerprint('funnels') }}) as definitions_hash,
    {{ staged_through() }} as staged_through
from journey_steps
inner join entries
    on journey_steps.funnel_id = entries.funnel_id
    and journey_steps.user_id = entries.user_id
    and journey_steps.entry_id = entries.entry_id
inner join attributed
    on journey_steps.funnel_id = attributed.funnel_id
    and journey_steps.user_id = attributed.user_id
    and journey_steps.entry_id = attributed.entry_id
left join journey_steps as previous_step
    on previous_step.funnel_id = journey_steps.funnel_id
    and previous_step.user_id = journey_steps.user_id
    and previous_step.entry_id = journey_steps.entry_id
    and previous_step.step_number = journey_steps.step_number - 1
left join exclusions
    on journey_steps.funnel_id = exclusions.funnel_id
    and journey_steps.user_id = exclusions.user_id
    and journey_steps.entry_id = exclusions.entry_id
