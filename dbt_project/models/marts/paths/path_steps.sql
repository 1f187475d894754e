-- The step matrix of every path (retentioneering's shape): per path, step and node, the users at that node and
-- their share of the path's users (each step's shares sum to 1; '(end)' / '(start)' gather the paths that ended
-- before the step).
with nodes as (

    select * from {{ ref('int_path_nodes') }}

),

path_users as (

    select path_id, count(distinct user_id) as path_users
    from nodes
    group by path_id

)

select
    nodes.path_id,
    nodes.step_number,
    nodes.node,
    count(*) as users,
    cast(count(*) as double) / max(path_users.path_users) as share_of_users,
    max(path_users.path_users) as path_users
from nodes
inner join path_users on nodes.path_id = path_users.path_id
group by nodes.path_id, nodes.step_number, nodes.node
