-- Every event matching a funnel step or exclusion (seeds funnels and funnel_steps without a config_error), one row
-- per event and step it matches with all the step's filters: the events int_funnel_journeys follows. A table of its
-- own so that the journeys read them once on each engine (Spark inlines a CTE into every reader). Incremental per
-- user (macros/incremental_users.sql); every user is recomputed when the funnel definitions change.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_funnel_step_events', definitions='funnels')) }}
{#- On DuckDB the matched events come in branches that each skip work (a JSON read, a grouping, the join to the
    all-event rank); on Spark each CTE is one branch, with the same rows (its plan inlines every CTE copy). -#}
{%- set split_branches = target.type != 'spark' %}

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
        sum(case when steps.property is not null then 1 else 0 end) as filter_count,
        -- a step without filters of a funnel without a property: or context: breakdown never reads the JSON
        sum(case when steps.property is not null then 1 else 0 end) > 0
            or max(definitions.breakdown_kind) in ('property', 'context') as reads_json
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

named_matches as {{ inline_cte() }} (
    {%- if split_branches %}

    -- events with the name of a step that needs nothing of their JSON (most steps: the scan then skips the
    -- properties and context of millions of events)
    select
        events.user_id,
        events.message_id,
        events.event_at,
        events.event_at_local,
        step_definitions.funnel_id,
        step_definitions.step_kind,
        step_definitions.step_number,
        step_definitions.filter_count,
        cast(null as {{ dbt.type_string() }}) as breakdown_value,
        1 as passes
    from activity_events as events
    inner join step_definitions on events.event_name = step_definitions.event_name
    where not step_definitions.reads_json

    union all
    {%- endif %}

    -- events with the name of a step that has filters or a breakdown value, with the step's filters (a step without
    -- filters: one row with null property)
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
    inner join step_definitions
        on events.event_name = step_definitions.event_name
        {%- if split_branches %} and step_definitions.reads_json{% endif %}
    inner join definitions on step_definitions.funnel_id = definitions.funnel_id
    left join step_filters
        on step_definitions.funnel_id = step_filters.funnel_id
        and step_definitions.step_kind = step_filters.step_kind
        and step_definitions.step_number = step_filters.step_number

),

matched_events as {{ inline_cte() }} (

    -- one row per event and step (or exclusion) whose every filter it passes: a step without filters takes its
    -- events as they are; one with filters groups an event's filter rows
    {%- if split_branches %}
    select funnel_id, step_kind, step_number, user_id, message_id, event_at, event_at_local, breakdown_value
    from named_matches
    where filter_count = 0

    union all
    {%- endif %}

    select funnel_id, step_kind, step_number, user_id, message_id, event_at, event_at_local, breakdown_value
    from named_matches
    {%- if split_branches %}
    where filter_count > 0
    {%- endif %}
    group by funnel_id, step_kind, step_number, user_id, message_id, event_at, event_at_local, breakdown_value
    having sum(passes) = greatest(max(filter_count), 1)

),

step_events as (

    -- "after" means later by time, then by message id; a strict funnel also needs each event's position among all
    -- the user's activity events ("the very next event"), which only its events are given (null for the others)
    {%- if split_branches %}
    select
        matched_events.funnel_id,
        matched_events.step_kind,
        matched_events.step_number,
        matched_events.user_id,
        matched_events.message_id,
        cast(null as {{ dbt.type_bigint() }}) as event_rank,
        matched_events.event_at,
        matched_events.event_at_local,
        matched_events.breakdown_value
    from matched_events
    inner join definitions on matched_events.funnel_id = definitions.funnel_id and definitions.ordering <> 'strict'

    union all

    select
        matched_events.funnel_id,
        matched_events.step_kind,
        matched_events.step_number,
        matched_events.user_id,
        matched_events.message_id,
        ranked_events.event_rank,
        matched_events.event_at,
        matched_events.event_at_local,
        matched_events.breakdown_value
    from matched_events
    inner join definitions on matched_events.funnel_id = definitions.funnel_id and definitions.ordering = 'strict'
    inner join ranked_events on matched_events.message_id = ranked_events.message_id
    {%- else %}
    select
        matched_events.funnel_id,
        matched_events.step_kind,
        matched_events.step_number,
        matched_events.user_id,
        matched_events.message_id,
        ranked_events.event_rank,
        matched_events.event_at,
        matched_events.event_at_local,
        matched_events.breakdown_value
    from matched_events
    left join ranked_events on matched_events.message_id = ranked_events.message_id
    {%- endif %}

)

select
    funnel_id,
    step_kind,
    step_number,
    user_id,
    message_id,
    event_rank,
    event_at,
    event_at_local,
    breakdown_value,
    ({{ definitions_fingerprint('funnels') }}) as definitions_hash,
    {{ staged_through() }} as staged_through
from step_events
