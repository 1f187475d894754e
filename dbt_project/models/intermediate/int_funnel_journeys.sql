-- Each funnel entry's path, one row per step reached (macro funnel_journeys): the funnels of seeds funnels and
-- funnel_steps without a config_error, over activity events up to as_of. An entry is a user's first step-1 event
-- (any order: the first event matching any step), and with entry 'recurring' also its first one in each day,
-- week and month (the is_*_entry flags say which grains count it). Incremental per user
-- (macros/incremental_users.sql); every user is recomputed when the funnel definitions change.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_funnel_journeys', definitions='funnels')) }}

with definitions as (

    select * from {{ ref('int_funnel_definitions') }}
    where config_error is null

),

step_definitions as (

    select
        steps.funnel_id,
        steps.step_kind,
        steps.step_number,
        steps.event_name,
        sum(case when steps.property is not null then 1 else 0 end) as filter_count
    from {{ ref('int_funnel_step_definitions') }} as steps
    inner join definitions on steps.funnel_id = definitions.funnel_id
    group by steps.funnel_id, steps.step_kind, steps.step_number, steps.event_name

),

step_filters as (

    select steps.*
    from {{ ref('int_funnel_step_definitions') }} as steps
    inner join definitions on steps.funnel_id = definitions.funnel_id
    where steps.property is not null

),

activity_events as {{ inline_cte() }} (

    select user_id, message_id, event_name, event_at, event_at_local, properties, context
    from {{ ref('int_activity_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

ranked_events as (

    -- each event's position among all the user's activity events, which "the very next event" of a strict funnel
    -- needs: a sort of every event, done only when a strict funnel is defined (the others order their own events)
    select
        message_id,
        row_number() over (partition by user_id order by event_at, message_id) as event_rank
    from activity_events
    where exists (select 1 from definitions where ordering = 'strict')

),

named_matches as (

    -- events with a step's name, and the step's filters (a step without filters: one row with null property)
    select
        events.user_id,
        events.message_id,
        events.event_at,
        events.event_at_local,
        step_definitions.funnel_id,
        step_definitions.step_kind,
        step_definitions.step_number,
        step_definitions.filter_count,
        case
            when definitions.breakdown_kind = 'property'
                then {{ json_label_at('events.properties', 'definitions.breakdown_field') }}
            when definitions.breakdown_kind = 'context'
                then {{ json_label_at('events.context', 'definitions.breakdown_field') }}
        end as breakdown_value,
        case
            when step_filters.property is null then 1
            when step_filters.operator = 'is_set'
                then case when {{ json_text_at('events.properties', 'step_filters.property') }} is not null then 1 else 0 end
            when step_filters.operator = 'is_not_set'
                then case when {{ json_text_at('events.properties', 'step_filters.property') }} is null then 1 else 0 end
            when step_filters.operator = 'eq'
                then case when {{ json_text_at('events.properties', 'step_filters.property') }} = step_filters.value then 1 else 0 end
            when step_filters.operator = 'neq'
                then case when {{ json_text_at('events.properties', 'step_filters.property') }} = step_filters.value then 0 else 1 end
            when step_filters.operator = 'contains'
                then case when {{ dbt.position('step_filters.value', json_text_at('events.properties', 'step_filters.property')) }} > 0 then 1 else 0 end
            else case
                when {{ safe_number(json_text_at('events.properties', 'step_filters.property'), 'double') }} is null then 0
                when step_filters.operator = 'gt' and {{ safe_number(json_text_at('events.properties', 'step_filters.property'), 'double') }} > step_filters.value_number then 1
                when step_filters.operator = 'gte' and {{ safe_number(json_text_at('events.properties', 'step_filters.property'), 'double') }} >= step_filters.value_number then 1
                when step_filters.operator = 'lt' and {{ safe_number(json_text_at('events.properties', 'step_filters.property'), 'double') }} < step_filters.value_number then 1
                when step_filters.operator = 'lte' and {{ safe_number(json_text_at('events.properties', 'step_filters.property'), 'double') }} <= step_filters.value_number then 1
                else 0
            end
        end as passes
    from activity_events as events
    inner join step_definitions on events.event_name = step_definitions.event_name
    inner join definitions on step_definitions.funnel_id = definitions.funnel_id
    left join step_filters
        on step_definitions.funnel_id = step_filters.funnel_id
        and step_definitions.step_kind = step_filters.step_kind
        and step_definitions.step_number = step_filters.step_number

),

matched_events as (

    -- one row per event and step (or exclusion) whose every filter it passes
    select
        funnel_id, step_kind, step_number, user_id, message_id, event_at, event_at_local, breakdown_value
    from named_matches
    group by funnel_id, step_kind, step_number, user_id, message_id, event_at, event_at_local, breakdown_value
    having sum(passes) = greatest(max(filter_count), 1)

),

step_events as (

    -- "after" is by event_rank: the position among all activity events when a strict funnel needs it, else among
    -- the matched events (the same order, and the same comparisons)
    select
        matched_events.funnel_id,
        matched_events.step_kind,
        matched_events.step_number,
        matched_events.user_id,
        coalesce(
            ranked_events.event_rank,
            dense_rank() over (
                partition by matched_events.user_id order by matched_events.event_at, matched_events.message_id
            )
        ) as event_rank,
        matched_events.event_at,
        matched_events.event_at_local,
        matched_events.breakdown_value
    from matched_events
    left join ranked_events on matched_events.message_id = ranked_events.message_id

),

entry_candidates as (

    select
        step_events.funnel_id,
        step_events.user_id,
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

ranked_entry_candidates as (

    select
        *,
        row_number() over (partition by funnel_id, user_id order by event_rank) as rank_in_history,
        row_number() over (partition by funnel_id, user_id, entry_date order by event_rank) as rank_in_day,
        row_number() over (
            partition by funnel_id, user_id, {{ dbt.date_trunc('week', 'entry_date') }} order by event_rank
        ) as rank_in_week,
        row_number() over (
            partition by funnel_id, user_id, {{ dbt.date_trunc('month', 'entry_date') }} order by event_rank
        ) as rank_in_month
    from entry_candidates

),

entries as (

    select
        funnel_id,
        user_id,
        event_rank as entry_rank,
        event_at as entered_at,
        {{ dbt.dateadd('second', 'window_seconds', 'event_at') }} as window_ends_at,
        ordering,
        breakdown_value,
        rank_in_history = 1 as is_first_entry,
        rank_in_day = 1 and (entry = 'recurring' or rank_in_history = 1) as is_day_entry,
        rank_in_week = 1 and (entry = 'recurring' or rank_in_history = 1) as is_week_entry,
        rank_in_month = 1 and (entry = 'recurring' or rank_in_history = 1) as is_month_entry
    from ranked_entry_candidates
    where rank_in_history = 1 or (entry = 'recurring' and rank_in_day = 1)

),

journey_steps as (

    {{ funnel_journeys('step_events', 'entries', var('funnel_max_steps')) }}

),

exclusions as (

    -- an exclusion event after step n and before step n + 1 (or, when n + 1 was not reached, before the window
    -- ends) disqualifies the entry
    select distinct reached.funnel_id, reached.user_id, reached.entry_rank
    from journey_steps as reached
    inner join entries
        on reached.funnel_id = entries.funnel_id
        and reached.user_id = entries.user_id
        and reached.entry_rank = entries.entry_rank
    inner join step_events as excluded
        on excluded.funnel_id = reached.funnel_id
        and excluded.user_id = reached.user_id
        and excluded.step_kind = 'exclusion'
        and excluded.step_number = reached.step_number
        and excluded.event_rank > reached.event_rank
    left join journey_steps as next_step
        on next_step.funnel_id = reached.funnel_id
        and next_step.user_id = reached.user_id
        and next_step.entry_rank = reached.entry_rank
        and next_step.step_number = reached.step_number + 1
    where excluded.event_rank < next_step.event_rank
        or (next_step.event_rank is null and excluded.event_at <= entries.window_ends_at)

),

journey_summaries as (

    select
        funnel_id,
        user_id,
        entry_rank,
        max(step_number) as last_step_number
    from journey_steps
    group by funnel_id, user_id, entry_rank

),

attributed as (

    -- the breakdown value of a property: or context: breakdown, by the funnel's attribution
    select
        summaries.funnel_id,
        summaries.user_id,
        summaries.entry_rank,
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
        and first_step.entry_rank = summaries.entry_rank
        and first_step.step_number = 1
    inner join journey_steps as last_step
        on last_step.funnel_id = summaries.funnel_id
        and last_step.user_id = summaries.user_id
        and last_step.entry_rank = summaries.entry_rank
        and last_step.step_number = summaries.last_step_number
    left join journey_steps as attributed_step
        on attributed_step.funnel_id = summaries.funnel_id
        and attributed_step.user_id = summaries.user_id
        and attributed_step.entry_rank = summaries.entry_rank
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
    and journey_steps.entry_rank = entries.entry_rank
inner join attributed
    on journey_steps.funnel_id = attributed.funnel_id
    and journey_steps.user_id = attributed.user_id
    and journey_steps.entry_rank = attributed.entry_rank
left join journey_steps as previous_step
    on previous_step.funnel_id = journey_steps.funnel_id
    and previous_step.user_id = journey_steps.user_id
    and previous_step.entry_rank = journey_steps.entry_rank
    and previous_step.step_number = journey_steps.step_number - 1
left join exclusions
    on journey_steps.funnel_id = exclusions.funnel_id
    and journey_steps.user_id = exclusions.user_id
    and journey_steps.entry_rank = exclusions.entry_rank
