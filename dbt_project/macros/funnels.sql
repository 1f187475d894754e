{#- Funnels (docs/funnels.md): the helpers the funnel models share, and `funnel_journeys`, the engine. -#}

{#- A problem with a seed value, as SQL text: "<field> '<value>' <reason>". -#}
{% macro funnel_problem(field, column, reason) -%}
    {{ dbt.concat(["'" ~ field ~ " '''", "coalesce(" ~ column ~ ", '')", "''' " ~ reason | replace("'", "''") ~ "'"]) }}
{%- endmacro %}

{#- True when the whole of `expression` matches the regular expression `pattern` (no anchors needed). -#}
{% macro matches_pattern(expression, pattern) -%}
    {{ return(adapter.dispatch('matches_pattern', 'engagement_warehouse')(expression, pattern)) }}
{%- endmacro %}
{% macro duckdb__matches_pattern(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}
{% macro default__matches_pattern(expression, pattern) -%}
    ({{ expression }} rlike '^(?:{{ pattern }})$')
{%- endmacro %}

{#- A field of a JSON object as funnels name it: letters, digits and _, dots between nested fields. Checked before it
    is used as a JSON path, so no seed value can make a path the engine refuses. -#}
{% macro json_path_pattern() -%}
    [A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)*
{%- endmacro %}

{#- The value at `path_expression` (SQL giving a checked field such as 'device.type') of a JSON column, as text. -#}
{% macro json_text_at(column, path_expression) -%}
    {{ return(adapter.dispatch('json_text_at', 'engagement_warehouse')(column, path_expression)) }}
{%- endmacro %}
{% macro duckdb__json_text_at(column, path_expression) -%}
    json_extract_string({{ column }}, '$.' || {{ path_expression }})
{%- endmacro %}
{% macro default__json_text_at(column, path_expression) -%}
    get_json_object({{ column }}, concat('$.', {{ path_expression }}))
{%- endmacro %}

{#- The value at `path_expression` (SQL giving a checked field such as 'device.type') of a JSON column, as a
    bounded label like json_label: '(invalid)' for an object, an array or text longer than var label_max_length. -#}
{% macro json_label_at(column, path_expression) -%}
    {{ return(adapter.dispatch('json_label_at', 'engagement_warehouse')(column, path_expression)) }}
{%- endmacro %}
{% macro duckdb__json_label_at(column, path_expression) -%}
    case
        when json_type({{ column }}, '$.' || {{ path_expression }}) in ('OBJECT', 'ARRAY') then '(invalid)'
        when length(json_extract_string({{ column }}, '$.' || {{ path_expression }})) > {{ var('label_max_length') }}
            then '(invalid)'
        else json_extract_string({{ column }}, '$.' || {{ path_expression }})
    end
{%- endmacro %}
{% macro default__json_label_at(column, path_expression) -%}
    case
        when substring(trim(get_json_object({{ column }}, concat('$.', {{ path_expression }}))), 1, 1) in ('{', '[')
            then '(invalid)'
        when length(get_json_object({{ column }}, concat('$.', {{ path_expression }}))) > {{ var('label_max_length') }}
            then '(invalid)'
        else get_json_object({{ column }}, concat('$.', {{ path_expression }}))
    end
{%- endmacro %}

{#- The p-th quantile of a column (0 <= p <= 1) as an aggregate, interpolating linearly between the two nearest
    values (DuckDB's quantile_cont, Spark's percentile: the same numbers). -#}
{% macro percentile_cont(column, p) -%}
    {{ return(adapter.dispatch('percentile_cont', 'engagement_warehouse')(column, p)) }}
{%- endmacro %}
{% macro duckdb__percentile_cont(column, p) -%}
    quantile_cont({{ column }}, {{ p }})
{%- endmacro %}
{% macro default__percentile_cont(column, p) -%}
    percentile({{ column }}, {{ p }})
{%- endmacro %}

{#- Text values in a fixed order, joined by '|', as an aggregate (the same text whatever order rows come in). -#}
{% macro sorted_text_agg(column) -%}
    {{ return(adapter.dispatch('sorted_text_agg', 'engagement_warehouse')(column)) }}
{%- endmacro %}
{% macro duckdb__sorted_text_agg(column) -%}
    string_agg({{ column }}, '|' order by {{ column }})
{%- endmacro %}
{% macro default__sorted_text_agg(column) -%}
    concat_ws('|', array_sort(collect_list({{ column }})))
{%- endmacro %}

{#- Text values joined by `separator` in the order of `order_column`, as an aggregate. -#}
{% macro ordered_text_agg(column, order_column, separator) -%}
    {{ return(adapter.dispatch('ordered_text_agg', 'engagement_warehouse')(column, order_column, separator)) }}
{%- endmacro %}
{% macro duckdb__ordered_text_agg(column, order_column, separator) -%}
    string_agg({{ column }}, {{ separator }} order by {{ order_column }})
{%- endmacro %}
{% macro default__ordered_text_agg(column, order_column, separator) -%}
    concat_ws({{ separator }}, transform(array_sort(collect_list(struct({{ order_column }}, {{ column }}))), x -> x.{{ column }}))
{%- endmacro %}

{#- The int_users columns a funnel can be broken down by (breakdown user:<column>): the user's labels. -#}
{% macro funnel_user_breakdown_columns() -%}
    {{ return(['first_touch_source', 'first_touch_medium', 'first_touch_campaign', 'first_touch_channel',
               'country', 'plan']) }}
{%- endmacro %}

{#- One text fingerprint of every valid funnel's definition and steps: int_funnel_journeys recomputes every user
    when it changes (an analyst edited the seeds), and only then. -#}
{% macro funnel_definitions_fingerprint() -%}
    select {{ dbt.hash(sorted_text_agg('definition_text')) }} as definitions_hash
    from (
        select {{ dbt.concat([
            "definitions.funnel_id", "'/'", "cast(definitions.window_seconds as " ~ dbt.type_string() ~ ")",
            "'/'", "definitions.ordering", "'/'", "definitions.entry", "'/'", "definitions.breakdown", "'/'",
            "definitions.attribution", "'/'", "coalesce(cast(definitions.attribution_step as " ~ dbt.type_string() ~ "), '')",
        ]) }} as definition_text
        from {{ ref('int_funnel_definitions') }} as definitions
        where definitions.config_error is null
        union all
        select {{ dbt.concat([
            "steps.funnel_id", "'/'", "steps.step_kind", "'/'", "cast(steps.step_number as " ~ dbt.type_string() ~ ")",
            "'/'", "steps.event_name", "'/'", "coalesce(steps.property, '')", "'/'", "coalesce(steps.operator, '')",
            "'/'", "coalesce(steps.value, '')",
        ]) }}
        from {{ ref('int_funnel_step_definitions') }} as steps
        inner join {{ ref('int_funnel_definitions') }} as definitions
            on steps.funnel_id = definitions.funnel_id and definitions.config_error is null
    ) as definition_texts
{%- endmacro %}

{#- One text fingerprint of every valid path definition (seed paths). -#}
{% macro path_definitions_fingerprint() -%}
    select {{ dbt.hash(sorted_text_agg('definition_text')) }} as definitions_hash
    from (
        select {{ dbt.concat([
            "path_id", "'/'", "anchor_event", "'/'", "direction", "'/'",
            "cast(depth as " ~ dbt.type_string() ~ ")", "'/'", "cast(top_events as " ~ dbt.type_string() ~ ")", "'/'",
            "case when is_session_bounded then 'session' else 'all' end", "'/'",
            "case when collapses_repeats then 'collapsed' else 'every' end",
        ]) }} as definition_text
        from {{ ref('int_path_definitions') }}
        where config_error is null
    ) as definition_texts
{%- endmacro %}

{#- The fingerprint of the definitions a model is computed from: kind 'funnels' or 'paths'. -#}
{% macro definitions_fingerprint(kind) -%}
    {%- if kind == 'funnels' -%}
    {{ funnel_definitions_fingerprint() }}
    {%- elif kind == 'paths' -%}
    {{ path_definitions_fingerprint() }}
    {%- else -%}
    {{ exceptions.raise_compiler_error("definitions_fingerprint: kind must be funnels or paths, not " ~ kind) }}
    {%- endif -%}
{%- endmacro %}

{#- Every user, when the definitions (kind 'funnels' or 'paths') are not the ones the model's rows were computed with
    (or it has no rows); else none. Added to a per-user model's users to recompute by its config
    recompute_all_users_when_changed (macros/incremental_users.sql). -#}
{% macro users_if_definitions_changed(kind) -%}
    select distinct user_id from {{ ref('stg_events') }}
    where user_id is not null and not exists (
        select 1 from {{ this }}
        where definitions_hash = ({{ definitions_fingerprint(kind) }})
    )
{%- endmacro %}

{#- Rows computed with earlier definitions (every user was recomputed when they changed, so these are the users
    nothing holds any more). On Spark the materialization already replaced every user in scope. -#}
{% macro delete_rows_of_old_definitions(kind) %}
    {% if is_incremental() and target.type != 'spark' %}
    delete from {{ this }} where definitions_hash <> ({{ definitions_fingerprint(kind) }})
    {% endif %}
{% endmacro %}

{#- True when event a comes after event b in a user's order of events: by time, then by message id. -#}
{% macro comes_after(a_at, a_id, b_at, b_id) -%}
    ({{ a_at }} > {{ b_at }} or ({{ a_at }} = {{ b_at }} and {{ a_id }} > {{ b_id }}))
{%- endmacro %}

{#-
    funnel_step_events: every activity event matching a funnel step or exclusion with all the step's filters, one row
    per event and step (or exclusion), as a query: funnel_id, step_kind, step_number, user_id, message_id, event_rank
    (the event's position among all the user's activity events, by time and then message id: strict funnels only,
    else null), event_at, event_at_local, breakdown_value (the event's value of the funnel's property: or context:
    breakdown, else null). users_in_scope: a relation of user_ids to limit it to (an incremental run's), or none.

    On DuckDB the matched events come in branches that each skip work (a JSON read, a grouping, the join to the
    all-event rank); on Spark, which inlines a CTE into every reader, each CTE is one branch with the same rows.
-#}
{% macro funnel_step_events(users_in_scope=none) %}
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
    {%- if users_in_scope %}
    where user_id in (select user_id from {{ users_in_scope }})
    {%- endif %}

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

matched_step_events as (

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
    funnel_id, step_kind, step_number, user_id, message_id, event_rank, event_at, event_at_local, breakdown_value
from matched_step_events
{% endmacro %}

{#-
    funnel_journeys: each entry's path through its funnel, one row per step reached.

    step_events  a relation with one row per event and funnel step or exclusion it matches: funnel_id, step_kind
                 ('step' or 'exclusion'), step_number, user_id, message_id, event_at, event_rank (the event's
                 position among all the user's activity events by time and then message id: needed by strict
                 funnels only, else null), breakdown_value (the event's value of the funnel's property: or context:
                 breakdown, else null)
    entries      a relation with one row per entry: funnel_id, user_id, entry_id (the entry event's message id),
                 entry_rank, entered_at, window_ends_at, ordering, breakdown_value
    max_steps    how many steps the SQL follows (var funnel_max_steps)

    Events are ordered by time and then message id. Ordered funnels (strict, sequential) follow the steps greedily:
    step k is the earliest event matching it after step k - 1's event (strict: the very next activity event) and
    no later than window_ends_at; taking the earliest can only leave more room for the steps after it, so no other
    choice reaches further. Any order: each step's earliest event from the entry on within the window, and step k
    reached = k of them done, at the k-th time.

    Output: funnel_id, user_id, entry_id, step_number, message_id, event_rank, reached_at, breakdown_value.
-#}
{% macro funnel_journeys(step_events, entries, max_steps) %}
    {#- a candidate's fields, earliest by time and then message id first (one aggregate gives them all) -#}
    {%- set earliest_candidate = [
        ('reached_at', 'candidates.event_at'), ('message_id', 'candidates.message_id'),
        ('event_rank', 'candidates.event_rank'), ('breakdown_value', 'candidates.breakdown_value'),
    ] %}
    {%- for k in range(1, max_steps + 1) %}
    {{ "with" if loop.first else "," }} reached_{{ k }} as (
        {%- if k == 1 %}
        select
            entries.funnel_id,
            entries.user_id,
            entries.entry_id,
            entries.window_ends_at,
            entries.ordering,
            1 as step_number,
            entries.entry_id as message_id,
            entries.entry_rank as event_rank,
            entries.entered_at as reached_at,
            entries.breakdown_value
        from {{ entries }} as entries
        where entries.ordering <> 'any'
        {%- else %}
        select
            firsts.funnel_id,
            firsts.user_id,
            firsts.entry_id,
            firsts.window_ends_at,
            firsts.ordering,
            {{ k }} as step_number,
            firsts.first_candidate.message_id,
            firsts.first_candidate.event_rank,
            firsts.first_candidate.reached_at,
            firsts.first_candidate.breakdown_value
        from (
            select
                previous.funnel_id,
                previous.user_id,
                previous.entry_id,
                previous.window_ends_at,
                previous.ordering,
                {{ first_row(earliest_candidate) }} as first_candidate
            from reached_{{ k - 1 }} as previous
            inner join {{ step_events }} as candidates
                on candidates.funnel_id = previous.funnel_id
                and candidates.user_id = previous.user_id
                and candidates.step_kind = 'step'
                and candidates.step_number = {{ k }}
                and candidates.event_at >= previous.reached_at
                and candidates.event_at <= previous.window_ends_at
            where {{ comes_after('candidates.event_at', 'candidates.message_id', 'previous.reached_at', 'previous.message_id') }}
                and (previous.ordering <> 'strict' or candidates.event_rank = previous.event_rank + 1)
            group by
                previous.funnel_id, previous.user_id, previous.entry_id, previous.window_ends_at, previous.ordering
        ) as firsts
        {%- endif %}
    )
    {%- endfor %},

    any_order_firsts as (
        -- any order: each step's earliest matching event in the window, from the entry event on
        select
            firsts.funnel_id,
            firsts.user_id,
            firsts.entry_id,
            firsts.matched_step,
            firsts.first_candidate.message_id,
            firsts.first_candidate.event_rank,
            firsts.first_candidate.reached_at,
            firsts.first_candidate.breakdown_value
        from (
            select
                entries.funnel_id,
                entries.user_id,
                entries.entry_id,
                candidates.step_number as matched_step,
                {{ first_row(earliest_candidate) }} as first_candidate
            from {{ entries }} as entries
            inner join {{ step_events }} as candidates
                on candidates.funnel_id = entries.funnel_id
                and candidates.user_id = entries.user_id
                and candidates.step_kind = 'step'
                and candidates.event_at >= entries.entered_at
                and candidates.event_at <= entries.window_ends_at
            where entries.ordering = 'any'
                and (candidates.event_at > entries.entered_at or candidates.message_id >= entries.entry_id)
            group by entries.funnel_id, entries.user_id, entries.entry_id, candidates.step_number
        ) as firsts
    ),

    any_order_reached as (
        select
            funnel_id,
            user_id,
            entry_id,
            row_number() over (
                partition by funnel_id, user_id, entry_id order by reached_at, message_id, matched_step
            ) as step_number,
            message_id,
            event_rank,
            reached_at,
            breakdown_value
        from any_order_firsts
    )

    {% for k in range(1, max_steps + 1) %}
    select funnel_id, user_id, entry_id, step_number, message_id, event_rank, reached_at, breakdown_value
    from reached_{{ k }}
    union all
    {% endfor %}
    select funnel_id, user_id, entry_id, step_number, message_id, event_rank, reached_at, breakdown_value
    from any_order_reached
{% endmacro %}
