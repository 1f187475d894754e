-- One row per row of seed funnel_steps, read and checked: the step's event name normalised as stg_events does,
-- the filter's operator defaulted, and row_error naming the step and the field when something is wrong (the
-- funnel then carries it as its config_error in int_funnel_definitions). Rows of one step are its filters, AND-ed.
with seed_rows as (

    select
        trim(funnel_id) as funnel_id,
        lower(coalesce(nullif(trim(step_kind), ''), 'step')) as step_kind,
        nullif(trim(step_number), '') as step_number_text,
        {{ safe_number("nullif(trim(step_number), '')", 'int') }} as step_number,
        {{ normalize_event_name('event_name') }} as event_name,
        nullif(trim(property), '') as property,
        lower(nullif(trim(operator), '')) as operator_text,
        value
    from {{ ref('funnel_steps') }}

),

with_operator as (

    select
        *,
        case
            when operator_text is not null then operator_text
            when property is not null then 'eq'
        end as operator,
        {{ safe_number('value', 'double') }} as value_number,
        -- the rows of one step must name one event
        min(event_name) over (partition by funnel_id, step_kind, step_number)
            <> max(event_name) over (partition by funnel_id, step_kind, step_number) as has_other_event_names
    from seed_rows

),

checked as (

    select
        *,
        concat_ws('; ',
            case when step_kind not in ('step', 'exclusion')
                then {{ funnel_problem('step_kind', 'step_kind', 'is not one of step, exclusion') }} end,
            case when step_number is null or step_number < 1
                then {{ funnel_problem('step_number', 'step_number_text', 'is not a whole number of at least 1') }} end,
            case when event_name is null then 'event_name: empty' end,
            case when has_other_event_names then 'event_name: the rows of one step name different events' end,
            case when property is not null and not {{ matches_pattern('property', json_path_pattern()) }}
                then {{ funnel_problem('property', 'property', 'is not a field name (letters, digits and _, dots between nested fields)') }} end,
            case when operator is not null and property is null then 'property: the operator needs a property' end,
            case when operator not in ('eq', 'neq', 'contains', 'gt', 'gte', 'lt', 'lte', 'is_set', 'is_not_set')
                then {{ funnel_problem('operator', 'operator', 'is not one of eq, neq, contains, gt, gte, lt, lte, is_set, is_not_set') }} end,
            case when operator in ('eq', 'neq', 'contains') and value is null
                then {{ funnel_problem('value', 'operator', 'needs a value') }} end,
            case when operator in ('gt', 'gte', 'lt', 'lte') and value_number is null
                then {{ funnel_problem('value', 'value', 'is not a number (the operator compares numbers)') }} end
        ) as problems
    from with_operator

)

select
    funnel_id,
    step_kind,
    step_number,
    event_name,
    property,
    operator,
    value,
    value_number,
    case
        when problems <> '' then {{ dbt.concat([
            "step_kind", "' '", "coalesce(step_number_text, '?')", "': '", "problems"]) }}
    end as row_error
from checked
