-- One row per event: deduplicated by message_id, names normalised, anonymous ids stitched to users.
--
-- Incremental by landing file: a run stages the rows of files not staged before (a file loads in one transaction,
-- so it is staged whole or not at all), whatever their event time, so a late event lands in its own cohort and
-- period. When a new event links an anonymous id to a user (or to an earlier user than before), the rows already
-- staged under that anonymous id are re-stitched in the same run, with the id they had in previous_user_id; the
-- models downstream recompute every user named in user_id or previous_user_id of the rows staged by this run.
-- `dbt build --full-refresh` rebuilds from raw.events and gives the same table.
{{ config(
    materialized='incremental',
    unique_key='message_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    spark_partition_by={'column': 'event_date'},
) }}

{%- set event_columns = [
    'message_id', 'user_id', 'anonymous_id', 'type', 'event', 'timestamp', 'received_at', 'properties', 'traits',
    'context', 'source_file', 'source_line', 'loaded_at',
] -%}

with quarantined_files as (

    -- files of a batch that failed the gate (expectations/gate.py) stay out until released
    select file_name from {{ source('raw', 'load_manifest') }} where gate_status = 'quarantined'

),

{% if is_incremental() %}
-- the files loaded since the last run and not quarantined: a few names, which DuckDB pushes into the scan of
-- raw.events below, so that it skips the other files' rows instead of reading every row's JSON (3.1 -> 1.7 s for a
-- 1% batch at 10M events)
files_to_stage as (

    select distinct source_file
    from {{ source('raw', 'events') }}
    where source_file not in (select file_name from quarantined_files)
      and source_file not in (select distinct source_file from {{ this }})

),
{% endif %}

source_events as {{ inline_cte() }} (

    select
        -- client ids, bounded (macros/labels.sql: longer than var id_max_length = '(long id) ' and the md5)
        {{ bounded_id('message_id') }} as message_id,
        {{ bounded_id('user_id') }} as user_id,
        {{ bounded_id('anonymous_id') }} as anonymous_id,
        type,
        event,
        timestamp,
        received_at,
        properties,
        traits,
        context,
        source_file,
        source_line,
        loaded_at
    from {{ source('raw', 'events') }}
    {% if is_incremental() %}
    where source_file in (select source_file from files_to_stage)
    {% else %}
    where source_file not in (select file_name from quarantined_files)
    {% endif %}

),

-- Each message id's earliest received copy is kept. Most ids arrive once: only the ids seen more than once are
-- ranked, so the window sorts a few rows instead of every row with its JSON (at 100M events that sort spilled
-- 41 GB to disk).
copy_ids as {{ inline_cte() }} (

    -- a row without any id (written by another path than ingestion) belongs to no user: left out, counted in
    -- marts.data_health_flags (event_without_user); the bounded id (null when empty) keyed so that nulls group
    select *, coalesce(message_id, '') as copy_key
    from source_events
    where user_id is not null or anonymous_id is not null

),

repeated_ids as (

    select copy_key from copy_ids group by copy_key having count(*) > 1

),

single_copies as (

    select {{ event_columns | join(', ') }}
    from copy_ids
    where copy_key not in (select copy_key from repeated_ids)

),

earliest_copies as (

    select {{ event_columns | join(', ') }}
    from (
        select
            *,
            -- on the bounded id, so that the table's message_id stays unique
            row_number() over (
                partition by copy_key
                order by received_at, loaded_at, source_file, source_line
            ) as copy_rank
        from copy_ids
        where copy_key in (select copy_key from repeated_ids)
    ) as repeated_copies
    where copy_rank = 1

),

deduplicated_events as {{ inline_cte() }} (

    select * from single_copies
    union all
    select * from earliest_copies

),

identified_events as (

    select anonymous_id, user_id, timestamp as event_at, message_id
    from deduplicated_events
    where anonymous_id is not null and user_id is not null
    {% if is_incremental() %}
    union all
    select anonymous_id, known_user_id as user_id, event_at, message_id
    from {{ this }}
    where anonymous_id is not null and known_user_id is not null
      and anonymous_id in (select anonymous_id from deduplicated_events)
    {% endif %}

),

-- An anonymous id belongs to the first known user it was seen with (an aggregate, not a window: nearly every event
-- names both ids, and sorting them all took 14 of the model's 68 CPU-s at 10M events).
identity_links as (

    select anonymous_id, {{ first_by('user_id', ['event_at', 'message_id']) }} as linked_user_id
    from identified_events
    group by anonymous_id

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

-- a name is normalised once, not once per event (three regular expressions: 9 CPU-s at 10M events)
sent_names as (

    select event, {{ normalize_event_name('event') }} as normalized_name
    from (select distinct event from deduplicated_events where type = 'track') as distinct_names

),

named_events as (

    select
        stitched_events.*,
        -- '(invalid)' when nothing is left of the name (a track call without one, written by another path than
        -- ingestion): counted in marts.data_health_flags (unnamed_event)
        coalesce(
            nullif(
                case stitched_events.type
                    when 'track' then sent_names.normalized_name
                    when 'page' then 'page_viewed'
                    when 'screen' then 'screen_viewed'
                    else stitched_events.type
                end,
                ''
            ),
            '(invalid)'
        ) as event_name
    from stitched_events
    left join sent_names
        on stitched_events.type = 'track' and stitched_events.event = sent_names.event

),

new_events as (

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
        -- decimal, not double: sums are then exact and the same on every rebuild, whatever the order of addition.
        -- A client's text ('NaN', '1e400', '0x1A', an object) is null here, never an error: ingestion rejects most,
        -- and marts.data_health_flags counts (revenue_unreadable) any that reach raw.events by another path
        {{ safe_number(json_text('properties', 'revenue'), 'decimal(18, 4)') }} as revenue,
        event_name not in (
            {%- for name in var('non_activity_events') %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
        ) as is_activity,
        properties,
        traits,
        context,
        source_file,
        cast(null as {{ dbt.type_string() }}) as previous_user_id
    from named_events

){% if is_incremental() %},

-- rows staged earlier under an anonymous id whose user the new rows changed
restitched_events as (

    select
        staged.message_id,
        staged.event_type,
        staged.event_name,
        staged.event_name_as_sent,
        identity_links.linked_user_id as user_id,
        staged.known_user_id,
        staged.anonymous_id,
        staged.event_at,
        staged.event_at_local,
        staged.event_date,
        staged.received_at,
        staged.loaded_at,
        staged.revenue,
        staged.is_activity,
        staged.properties,
        staged.traits,
        staged.context,
        staged.source_file,
        staged.user_id as previous_user_id
    from {{ this }} as staged
    inner join identity_links on staged.anonymous_id = identity_links.anonymous_id
    where staged.known_user_id is null
      and staged.user_id <> identity_links.linked_user_id

){% endif %}

select *, cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }}) as staged_at
from new_events
{% if is_incremental() %}
union all
select *, cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }}) as staged_at
from restitched_events
{% endif %}
