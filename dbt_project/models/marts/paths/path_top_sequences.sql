-- The most common complete paths: per path, each distinct sequence of nodes from the anchor (or to it, for
-- direction previous) in time order, as text ('signed_up > feature_used > (end)'), with its users and share; the
-- var path_top_sequences (20) with the most users, ties by the sequence's text.
with nodes as (

    select * from {{ ref('int_path_nodes') }}

),

trimmed as (

    -- a path's run of '(end)' (or '(start)') nodes is one: the first '(end)', the last '(start)'
    select nodes.*
    from nodes
    left join nodes as neighbour
        on nodes.path_id = neighbour.path_id
        and nodes.user_id = neighbour.user_id
        and neighbour.step_number = case when nodes.node = '(end)' then nodes.step_number - 1 else nodes.step_number + 1 end
    where nodes.node not in ('(end)', '(start)') or neighbour.node <> nodes.node

),

sequences as (

    select
        path_id,
        user_id,
        {{ ordered_text_agg('node', 'step_number', "' > '") }} as sequence
    from trimmed
    group by path_id, user_id

),

counted as (

    select
        path_id,
        sequence,
        count(*) as users,
        cast(sum(count(*)) over (partition by path_id) as {{ dbt.type_bigint() }}) as path_users
    from sequences
    group by path_id, sequence

),

ranked as (

    select
        *,
        row_number() over (partition by path_id order by users desc, sequence) as sequence_rank
    from counted

)

select
    path_id,
    sequence_rank,
    sequence,
    users,
    cast(users as double) / path_users as share_of_users,
    path_users
from ranked
where sequence_rank <= {{ var('path_top_sequences') }}
