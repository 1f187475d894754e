-- One row per event: deduplicated by message_id, names normalised, anonymous ids stitched to users.
with quarantined_files as (

    -- files of a batch that failed the gate (expectations/gate.py) stay out until released
    select file_name from {{ source('raw', 'load_manifest') }} where gate_status = 'quarantined'

),

source_events as (

    select * from {{ source('raw', 'events') }}
    where source_file not in (select file_name from quarantined_files)

),

ranked_events as (

    select
        *,
        row_number() over (
            partition by message_id
            order by received_at, loaded_at, source_file, source_line
        ) as copy_rank
    from source_events

),

deduplicated_events as (

    select * from ranked_events where copy_rank = 1

),

-- An anonymous id belongs to the first known user it was seen with.
identity_links as (

    select anonymous_id, user_id as linked_user_id
    from (
        select
            anonymous_id,
            user_id,
            row_number() over (partition by anonymous_id order by timestamp, message_id) as link_rank
        from deduplicated_events
        where anonymous_id is not null and user_id is not null
    ) as links
    where link_rank = 1

),

stitched_events as (

    select
        deduplicated_events.*,
        coalesce(deduplicated_events.user_id, identity_links.linked_user_id, deduplicated_events.anonymous_id)
            as blended_user_id,
        {{ to_reporting_time('deduplicated_events.timestamp') }} as event_at_local
    from deduplicated_events
    left join identity_links
        on deduplicated_events.anonymous_id = identity_links.anonymous_id

),

named_events as (

    select
        *,
        case type
            when 'track' then {{ normalize_event_name('event') }}
            when 'page' then 'page_viewed'
            when 'screen' then 'screen_viewed'
            else type
        end as event_name
    from stitched_events

)

select
    message_id,
    type as event_type,
    event_name,
    event as event_name_as_sent,
    blended_user_id as user_id,
    user_id as known_user_id,
    anonymous_id,
    timestamp as event_at,
    event_at_local,
    cast(event_at_local as date) as event_date,
    received_at,
    loaded_at,
    -- decimal, not double: sums are then exact and the same on every rebuild, whatever the order of addition
    cast({{ json_text('properties', 'revenue') }} as decimal(18, 4)) as revenue,
    event_name not in (
        {%- for name in var('non_activity_events') %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
    ) as is_activity,
    properties,
    traits,
    context,
    source_file
from named_events
