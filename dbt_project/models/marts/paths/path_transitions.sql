-- The flows of every path between consecutive steps, in time order (what a Sankey draws): per path, from one
-- step's node to the next step's node, the users who went that way. Flows between two '(end)' (or two '(start)')
-- nodes are left out: nothing happened there.
with nodes as (

    select * from {{ ref('int_path_nodes') }}

)

select
    earlier.path_id,
    earlier.step_number as from_step,
    earlier.node as from_node,
    later.step_number as to_step,
    later.node as to_node,
    count(*) as users
from nodes as earlier
inner join nodes as later
    on earlier.path_id = later.path_id
    and earlier.user_id = later.user_id
    and later.step_number = earlier.step_number + 1
where not (earlier.node in ('(end)', '(start)') and later.node in ('(end)', '(start)'))
group by earlier.path_id, earlier.step_number, earlier.node, later.step_number, later.node
