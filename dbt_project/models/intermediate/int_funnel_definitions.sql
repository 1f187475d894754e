-- One row per funnel of seeds funnels and funnel_steps, with its settings read and checked. A funnel with a bad value
-- gets config_error (every problem, each naming the funnel and the field) and is left out of the funnel models;
-- the other funnels are built as usual. Defaults: a 14-day window, sequential, first entry, first-touch attribution.
with funnel_rows as (

    select
        trim(funnel_id) as funnel_id,
        description,
        nullif(trim(conversion_window), '') as conversion_window_text,
        lower(coalesce(nullif(trim(window_unit), ''), 'day')) as window_unit,
        lower(coalesce(nullif(trim(ordering), ''), 'sequential')) as ordering,
        lower(coalesce(nullif(trim(entry), ''), 'first')) as entry,
        nullif(trim(breakdown), '') as breakdown,
        lower(coalesce(nullif(trim(attribution), ''), 'first_touch')) as attribution,
        nullif(trim(attribution_step), '') as attribution_step_text,
        true as has_funnel_row
    from {{ ref('funnels') }}

    union all

    -- steps of a funnel the seed funnels does not list: reported, not ignored
    select distinct
        steps.funnel_id,
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        'day',
        'sequential',
        'first',
        cast(null as {{ dbt.type_string() }}),
        'first_touch',
        cast(null as {{ dbt.type_string() }}),
        false
    from {{ ref('int_funnel_step_definitions') }} as steps
    where steps.funnel_id not in (select trim(funnel_id) from {{ ref('funnels') }} where funnel_id is not null)

),

funnel_counts as (

    select funnel_id, count(*) as rows_with_id
    from funnel_rows
    group by funnel_id

),

step_rows as (

    select * from {{ ref('int_funnel_step_definitions') }}

),

step_summary as (

    select
        funnel_id,
        count(distinct case when step_kind = 'step' then step_number end) as step_count,
        max(case when step_kind = 'step' then step_number end) as max_step_number,
        min(case when step_kind = 'step' then step_number end) as min_step_number,
        count(distinct case when step_kind = 'exclusion' then step_number end) as exclusion_count,
        max(case when step_kind = 'exclusion' then step_number end) as max_exclusion_after,
        -- one problem per funnel is enough to name (the others show once it is fixed)
        min(row_error) as first_row_error
    from step_rows
    group by funnel_id

),

parsed as (

    select
        funnel_rows.*,
        {{ safe_number('funnel_rows.conversion_window_text', 'bigint') }} as conversion_window,
        {{ safe_number('funnel_rows.attribution_step_text', 'int') }} as attribution_step,
        case
            when funnel_rows.breakdown is null then 'none'
            when funnel_rows.breakdown in ('rfm_segment', 'cluster') then funnel_rows.breakdown
            when {{ matches_pattern('funnel_rows.breakdown', '(property|context):' ~ json_path_pattern()) }}
                then {{ dbt.split_part('funnel_rows.breakdown', "':'", 1) }}
            when {{ matches_pattern('funnel_rows.breakdown', 'user:[a-z_]+') }} then 'user'
            when {{ matches_pattern('funnel_rows.breakdown', 'variant:.+') }} then 'variant'
        end as breakdown_kind,
        case
            when funnel_rows.breakdown like '%:%'
                then substring(funnel_rows.breakdown, {{ dbt.position("':'", 'funnel_rows.breakdown') }} + 1)
        end as breakdown_field,
        coalesce(step_summary.step_count, 0) as step_count,
        coalesce(step_summary.exclusion_count, 0) as exclusion_count,
        step_summary.min_step_number,
        step_summary.max_step_number,
        step_summary.max_exclusion_after,
        step_summary.first_row_error,
        funnel_counts.rows_with_id
    from funnel_rows
    left join step_summary on funnel_rows.funnel_id = step_summary.funnel_id
    left join funnel_counts on funnel_rows.funnel_id = funnel_counts.funnel_id

),

checked as (

    select
        *,
        concat_ws('; ',
            case when not {{ matches_pattern('funnel_id', '[a-z][a-z0-9_]{0,49}') }} or funnel_id is null
                then 'funnel_id must be 1-50 lower-case letters, digits and _, starting with a letter' end,
            case when not has_funnel_row then 'funnels: the seed has no row for this funnel (only steps)' end,
            case when rows_with_id > 1 then 'funnel_id: more than one row of seed funnels has this id' end,
            case when conversion_window_text is not null and (conversion_window is null or conversion_window < 1)
                then {{ funnel_problem('conversion_window', 'conversion_window_text', 'is not a whole number of at least 1') }} end,
            case when window_unit not in ('minute', 'hour', 'day', 'week')
                then {{ funnel_problem('window_unit', 'window_unit', 'is not one of minute, hour, day, week') }} end,
            case when ordering not in ('strict', 'sequential', 'any')
                then {{ funnel_problem('ordering', 'ordering', 'is not one of strict, sequential, any') }} end,
            case when entry not in ('first', 'recurring')
                then {{ funnel_problem('entry', 'entry', 'is not one of first, recurring') }} end,
            case when breakdown is not null and breakdown_kind is null
                then {{ funnel_problem('breakdown', 'breakdown', 'is not property:<path>, context:<path>, user:<column>, rfm_segment, cluster or variant:<experiment_id>') }} end,
            case when breakdown_kind = 'user' and breakdown_field not in ({{ funnel_user_breakdown_columns() | map('tojson') | join(', ') | replace('"', "'") }})
                then {{ funnel_problem('breakdown', 'breakdown', 'is not a column funnels can split by (' ~ funnel_user_breakdown_columns() | join(', ') ~ ')') }} end,
            case when attribution not in ('first_touch', 'last_touch', 'step')
                then {{ funnel_problem('attribution', 'attribution', 'is not one of first_touch, last_touch, step') }} end,
            case when attribution = 'step' and (attribution_step is null or attribution_step < 1 or attribution_step > step_count)
                then 'attribution_step: attribution step needs the number of one of the funnel''s steps' end,
            case when step_count = 0 then 'funnel_steps: the funnel has no steps' end,
            case when step_count = 1 then 'funnel_steps: a funnel needs at least two steps' end,
            case when step_count > {{ var('funnel_max_steps') }}
                then 'funnel_steps: more steps than var funnel_max_steps ({{ var("funnel_max_steps") }})' end,
            case when step_count > 0 and (min_step_number <> 1 or max_step_number <> step_count)
                then 'funnel_steps: step numbers must be 1, 2, 3 ... without gaps' end,
            case when exclusion_count > 0 and ordering = 'any'
                then 'funnel_steps: exclusions need an ordered funnel (ordering strict or sequential)' end,
            case when exclusion_count > 0 and max_exclusion_after >= step_count
                then 'funnel_steps: an exclusion''s step_number n must be a step followed by another (n < the last step)' end,
            first_row_error
        ) as problems
    from parsed

)

select
    funnel_id,
    description,
    cast(coalesce(conversion_window, 14) as {{ dbt.type_bigint() }}) as conversion_window,
    window_unit,
    cast(coalesce(conversion_window, 14) as {{ dbt.type_bigint() }}) * case window_unit
        when 'minute' then 60 when 'hour' then 3600 when 'day' then 86400 when 'week' then 604800
    end as window_seconds,
    ordering,
    entry,
    coalesce(breakdown, '(none)') as breakdown,
    breakdown_kind,
    breakdown_field,
    attribution,
    attribution_step,
    cast(step_count as {{ dbt.type_int() }}) as step_count,
    cast(exclusion_count as {{ dbt.type_int() }}) as exclusion_count,
    case when problems <> '' then {{ dbt.concat(["'funnel '''", "coalesce(funnel_id, '')", "''': '", "problems"]) }} end
        as config_error
from checked
