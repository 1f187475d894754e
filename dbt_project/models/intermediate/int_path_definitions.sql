-- One row per path of seed paths, its settings read with their defaults (next, 5 steps, 8 events per step, not
-- session-bounded, repeats collapsed) and checked. A path with a bad value gets config_error (every problem, each
-- naming the path and the field) and is left out of the path models; the others are built as usual.
with seed_rows as (

    select
        trim(path_id) as path_id,
        description,
        {{ normalize_event_name('anchor_event') }} as anchor_event,
        lower(coalesce(nullif(trim(direction), ''), 'next')) as direction,
        nullif(trim(depth), '') as depth_text,
        nullif(trim(top_events), '') as top_events_text,
        lower(coalesce(nullif(trim(session_bounded), ''), 'false')) as session_bounded_text,
        lower(coalesce(nullif(trim(collapse_repeats), ''), 'true')) as collapse_repeats_text,
        count(*) over (partition by trim(path_id)) as rows_with_id
    from {{ ref('paths') }}

),

parsed as (

    select
        *,
        coalesce({{ safe_number('depth_text', 'int') }}, case when depth_text is null then 5 end) as depth,
        coalesce({{ safe_number('top_events_text', 'int') }}, case when top_events_text is null then 8 end)
            as top_events
    from seed_rows

),

checked as (

    select
        *,
        concat_ws('; ',
            case when path_id is null or not {{ matches_pattern('path_id', '[a-z][a-z0-9_]{0,49}') }}
                then 'path_id must be 1-50 lower-case letters, digits and _, starting with a letter' end,
            case when rows_with_id > 1 then 'path_id: more than one row of seed paths has this id' end,
            case when anchor_event is null then 'anchor_event: empty' end,
            case when direction not in ('next', 'previous')
                then {{ funnel_problem('direction', 'direction', 'is not one of next, previous') }} end,
            case when depth is null or depth < 1 or depth > {{ var('path_max_depth') }}
                then {{ funnel_problem('depth', 'depth_text', 'is not a whole number from 1 to ' ~ var('path_max_depth') ~ ' (var path_max_depth)') }} end,
            case when top_events is null or top_events < 1 or top_events > 100
                then {{ funnel_problem('top_events', 'top_events_text', 'is not a whole number from 1 to 100') }} end,
            case when session_bounded_text not in ('true', 'false')
                then {{ funnel_problem('session_bounded', 'session_bounded_text', 'is not true or false') }} end,
            case when collapse_repeats_text not in ('true', 'false')
                then {{ funnel_problem('collapse_repeats', 'collapse_repeats_text', 'is not true or false') }} end
        ) as problems
    from parsed

)

select
    path_id,
    description,
    anchor_event,
    direction,
    depth,
    top_events,
    session_bounded_text = 'true' as is_session_bounded,
    collapse_repeats_text = 'true' as collapses_repeats,
    case when problems <> '' then {{ dbt.concat(["'path '''", "coalesce(path_id, '')", "''': '", "problems"]) }} end
        as config_error
from checked
