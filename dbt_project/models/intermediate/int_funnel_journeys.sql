-- Each funnel entry's path, one row per step reached (macro funnel_journeys): the funnels of seeds funnels and
-- funnel_steps without a config_error, over their matched events (int_funnel_step_events, activity events up to
-- as_of). An entry is a user's first step-1 event (any order: the first event matching any step), and with entry
-- 'recurring' also its first one in each day, week and month (the is_*_entry flags say which grains count it).
-- Incremental per user (macros/incremental_users.sql); every user is recomputed when the funnel definitions change.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_funnel_journeys', definitions='funnels')) }}

with definitions as (

    select * from {{ ref('int_funnel_definitions') }}
    where config_error is null

),

step_events as (

    select funnel_id, step_kind, step_number, user_id, message_id, event_rank, event_at, event_at_local, breakdown_value
    from {{ ref('int_funnel_step_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

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

period_starts as (

    -- when the user first did step 1 in the whole history, and with entry recurring in each day, week and month: one
    -- aggregate over grouping sets (with entry first the period keys are null, and every grain's first is the
    -- history's)
    select
        funnel_id,
        user_id,
        case
            when grouping(day_start) = 0 then 'day'
            when grouping(week_start) = 0 then 'week'
            when grouping(month_start) = 0 then 'month'
            else 'all'
        end as grain,
        coalesce(day_start, week_start, month_start) as period_start,
        min(event_at) as entered_at
    from (
        select
            funnel_id,
            user_id,
            event_at,
            case when entry = 'recurring' then entry_date end as day_start,
            case when entry = 'recurring' then cast({{ dbt.date_trunc('week', 'entry_date') }} as date) end as week_start,
            case when entry = 'recurring' then cast({{ dbt.date_trunc('month', 'entry_date') }} as date) end
                as month_start
        from entry_candidates
    ) as keyed
    group by grouping sets (
        (funnel_id, user_id),
        (funnel_id, user_id, day_start),
        (funnel_id, user_id, week_start),
        (funnel_id, user_id, month_start)
    )

),

period_firsts as (

    -- the entry event: among the candidates at that instant, the first by message id
    select
        starts.funnel_id,
        starts.user_id,
        starts.grain,
        min(candidates.message_id) as entry_id
    from period_starts as starts
    inner join entry_candidates as candidates
        on starts.funnel_id = candidates.funnel_id
        and starts.user_id = candidates.user_id
        and starts.entered_at = candidates.event_at
    group by starts.funnel_id, starts.user_id, starts.grain, starts.period_start

),

entries as (

    select
        firsts.funnel_id,
        firsts.user_id,
        firsts.entry_id,
        max(candidates.event_rank) as entry_rank,
        max(candidates.event_at) as entered_at,
        {{ dbt.dateadd('second', 'max(candidates.window_seconds)', 'max(candidates.event_at)') }} as window_ends_at,
        max(candidates.ordering) as ordering,
        max(candidates.breakdown_value) as breakdown_value,
        max(case when firsts.grain = 'all' then 1 else 0 end) = 1 as is_first_entry,
        -- with entry first, the first entry (the only one) is every grain's
        max(case when firsts.grain = 'day' then 1 else 0 end) = 1 or max(candidates.entry) = 'first' as is_day_entry,
        max(case when firsts.grain = 'week' then 1 else 0 end) = 1 or max(candidates.entry) = 'first' as is_week_entry,
        max(case when firsts.grain = 'month' then 1 else 0 end) = 1 or max(candidates.entry) = 'first'
            as is_month_entry
    from period_firsts as firsts
    -- (an event matching two steps of an any-order funnel is two candidates with the same values)
    inner join entry_candidates as candidates
        on firsts.funnel_id = candidates.funnel_id
        and firsts.user_id = candidates.user_id
        and firsts.entry_id = candidates.message_id
    group by firsts.funnel_id, firsts.user_id, firsts.entry_id

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
