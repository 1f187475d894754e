-- Per user, the events of each event-level kind that marts.data_health_flags counts (see its description), and the
-- smallest example of each: kept per user so that a batch recounts only the users it touches
-- (macros/incremental_users.sql) instead of reading every event's properties again. All staged events count,
-- those after a pinned as_of too, as they did when the mart read staging.stg_events itself. With as_of pinned the
-- model is built as int_user_event_flags_as_of (like the other per-user models), so it belongs with what as_of
-- selects (int_as_of+) although it reads no time from it.
-- depends_on: {{ ref('stg_events') }}
-- depends_on: {{ ref('int_as_of') }}
{%- set known_types = "('track', 'page', 'screen', 'identify')" %}
{{ config(**per_user_incremental_config('int_user_event_flags')) }}

with staged_events as (

    select * from {{ ref('stg_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

-- per event: whether it carries each flag (named as in macro event_flag_names) and what it shows as an example
flagged_events as (

    select
        user_id,
        revenue is null and {{ json_text('properties', 'revenue') }} is not null as revenue_unreadable,
        substring({{ json_text('properties', 'revenue') }}, 1, 200) as revenue_unreadable_example,
        event_type not in {{ known_types }} as unknown_event_type,
        substring(event_type, 1, 200) as unknown_event_type_example,
        event_name = 'experiment_viewed'
            and ({{ json_text('properties', 'experiment_id') }} is null
                 or {{ json_text('properties', 'variant') }} is null) as experiment_view_incomplete,
        message_id as experiment_view_incomplete_example,
        event_name = 'feature_used' and {{ json_label('properties', 'feature') }} = '(invalid)' as invalid_feature,
        message_id as invalid_feature_example,
        message_id like '(long id) %' or known_user_id like '(long id) %' or anonymous_id like '(long id) %'
            as long_id,
        message_id as long_id_example,
        event_name = '(invalid)' as unnamed_event,
        message_id as unnamed_event_example
    from staged_events

)

select
    user_id,
    {%- for flag in event_flag_names() %}
    sum(case when {{ flag }} then 1 else 0 end) as {{ flag }},
    min(case when {{ flag }} then {{ flag }}_example end) as {{ flag }}_example,
    {%- endfor %}
    {{ staged_through() }} as staged_through
from flagged_events
group by user_id
