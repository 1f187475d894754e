-- Each user's path around its first anchor event, one row per step (the anchor is step 0; direction next gives
-- steps 1..depth after it, previous gives -1..-depth before it), for the paths of seed paths without a
-- config_error. Activity events in order of time and then message id; with collapse_repeats an event repeated back
-- to back within a session is one step; session-bounded paths stop at the anchor's session's edge. Incremental per
-- user (macros/incremental_users.sql); every user is recomputed when the path definitions change.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_path_steps', definitions='paths')) }}

with definitions as (

    select * from {{ ref('int_path_definitions') }}
    where config_error is null

),

activity_events as (

    -- session starts as the ML features cut them (var session_timeout_minutes)
    select user_id, message_id, event_name, event_at, is_session_start
    from {{ ref('int_feature_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

sequenced as (

    select
        user_id,
        event_name,
        event_at,
        row_number() over (partition by user_id order by event_at, message_id) as event_rank,
        sum(is_session_start) over (
            partition by user_id order by event_at, message_id rows between unbounded preceding and current row
        ) as session_number,
        -- the same event as the one before, in the same session
        is_session_start = 0
            and event_name = lag(event_name) over (partition by user_id order by event_at, message_id) as is_repeat
    from activity_events

),

sequences as (

    -- every event at its position, and (for paths that collapse repeats) every first of a run at its own
    select 'every' as sequence_kind, user_id, event_rank as position, event_name, event_at, session_number
    from sequenced
    where exists (select 1 from definitions where not collapses_repeats)

    union all

    select
        'collapsed' as sequence_kind,
        user_id,
        row_number() over (partition by user_id order by event_rank) as position,
        event_name,
        event_at,
        session_number
    from sequenced
    where not coalesce(is_repeat, false) and exists (select 1 from definitions where collapses_repeats)

),

definitions_by_sequence as (

    select
        *,
        case when collapses_repeats then 'collapsed' else 'every' end as sequence_kind
    from definitions

),

anchors as (

    -- each user's first anchor event
    select
        definitions_by_sequence.path_id,
        sequences.user_id,
        min(sequences.position) as anchor_position
    from sequences
    inner join definitions_by_sequence
        on sequences.sequence_kind = definitions_by_sequence.sequence_kind
        and sequences.event_name = definitions_by_sequence.anchor_event
    group by definitions_by_sequence.path_id, sequences.user_id

),

anchored as (

    select
        anchors.path_id,
        anchors.user_id,
        anchors.anchor_position,
        sequences.event_at as anchored_at,
        sequences.session_number as anchor_session_number,
        definitions_by_sequence.sequence_kind,
        definitions_by_sequence.direction,
        definitions_by_sequence.depth,
        definitions_by_sequence.is_session_bounded
    from anchors
    inner join definitions_by_sequence on anchors.path_id = definitions_by_sequence.path_id
    inner join sequences
        on sequences.user_id = anchors.user_id
        and sequences.sequence_kind = definitions_by_sequence.sequence_kind
        and sequences.position = anchors.anchor_position

)

select
    anchored.path_id,
    anchored.user_id,
    anchored.anchored_at,
    cast(sequences.position - anchored.anchor_position as {{ dbt.type_int() }}) as step_number,
    sequences.event_name,
    sequences.event_at,
    ({{ definitions_fingerprint('paths') }}) as definitions_hash,
    {{ staged_through() }} as staged_through
from anchored
inner join sequences
    on sequences.user_id = anchored.user_id
    and sequences.sequence_kind = anchored.sequence_kind
    and (
        (anchored.direction = 'next'
            and sequences.position between anchored.anchor_position and anchored.anchor_position + anchored.depth)
        or (anchored.direction = 'previous'
            and sequences.position between anchored.anchor_position - anchored.depth and anchored.anchor_position)
    )
    and (not anchored.is_session_bounded or sequences.session_number = anchored.anchor_session_number)
