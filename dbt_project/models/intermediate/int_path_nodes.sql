-- Every anchored user's node at every step of its path (step 0 = the anchor ... depth, or -depth ... 0), labelled for
-- the path marts: at each step the path's top_events events with the most users keep their name, the rest are
-- '(other)'; an event name longer than var label_max_length is '(invalid)'; a step past the end of the user's
-- path is '(end)' (direction next) or '(start)' (previous: no event that far before the anchor).
with definitions as (

    select * from {{ ref('int_path_definitions') }}
    where config_error is null

),

steps as (

    select
        path_id,
        user_id,
        step_number,
        case
            when length(event_name) > {{ var('label_max_length') }} then '(invalid)' else event_name
        end as event_name
    from {{ ref('int_path_steps') }}

),

event_ranks as (

    select
        steps.path_id,
        steps.step_number,
        steps.event_name,
        row_number() over (
            partition by steps.path_id, steps.step_number order by count(*) desc, steps.event_name
        ) as event_rank
    from steps
    group by steps.path_id, steps.step_number, steps.event_name

),

anchored_users as (

    select distinct path_id, user_id from steps

),

step_offsets as (

    select n as step_offset from ({{ integer_series(var('path_max_depth') + 1) }}) as offsets

),

grid as (

    -- every step of every anchored user's path
    select
        anchored_users.path_id,
        anchored_users.user_id,
        case when definitions.direction = 'next' then step_offsets.step_offset else -step_offsets.step_offset end
            as step_number,
        definitions.direction,
        definitions.top_events
    from anchored_users
    inner join definitions on anchored_users.path_id = definitions.path_id
    inner join step_offsets on step_offsets.step_offset <= definitions.depth

)

select
    grid.path_id,
    grid.user_id,
    cast(grid.step_number as {{ dbt.type_int() }}) as step_number,
    case
        when steps.event_name is null and grid.direction = 'next' then '(end)'
        when steps.event_name is null then '(start)'
        when event_ranks.event_rank > grid.top_events then '(other)'
        else steps.event_name
    end as node
from grid
left join steps
    on grid.path_id = steps.path_id
    and grid.user_id = steps.user_id
    and grid.step_number = steps.step_number
left join event_ranks
    on steps.path_id = event_ranks.path_id
    and steps.step_number = event_ranks.step_number
    and steps.event_name = event_ranks.event_name
