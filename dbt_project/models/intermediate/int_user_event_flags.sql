-- Per user, the events of each event-level kind that marts.data_health_flags counts (see its description), and the
-- smallest example of each: kept per user so that a batch recounts only the users it touches
-- (macros/incremental_users.sql) instead of reading every event's properties again. All staged events count,
-- those after a pinned as_of too, as they did when the mart read staging.stg_events itself. With as_of pinned the
-- model is built as int_user_event_flags_as_of (like the other per-user models), so it belongs with what as_of
-- selects (int_as_of+) although it reads no time from it.
-- depends_on: {{ ref('stg_events') }}
-- depends_on: {{ ref('int_as_of') }}
{%- set known_types = "('track', 'page', 'screen', 'identify')" %}
{%- set long_id_condition -%}
    message_id like '(long id) %' or known_user_id like '(long id) %' or anonymous_id like '(long id) %'
{%- endset %}
{{ config(**per_user_incremental_config('int_user_event_flags')) }}

select
    user_id,
    sum(case when revenue is null and {{ json_text('properties', 'revenue') }} is not null then 1 else 0 end)
        as revenue_unreadable,
    min(case when revenue is null and {{ json_text('properties', 'revenue') }} is not null
             then substring({{ json_text('properties', 'revenue') }}, 1, 200) end) as revenue_unreadable_example,
    sum(case when event_type not in {{ known_types }} then 1 else 0 end) as unknown_event_type,
    min(case when event_type not in {{ known_types }} then substring(event_type, 1, 200) end)
        as unknown_event_type_example,
    sum(case when event_name = 'experiment_viewed'
              and ({{ json_text('properties', 'experiment_id') }} is null
                   or {{ json_text('properties', 'variant') }} is null) then 1 else 0 end)
        as experiment_view_incomplete,
    min(case when event_name = 'experiment_viewed'
              and ({{ json_text('properties', 'experiment_id') }} is null
                   or {{ json_text('properties', 'variant') }} is null) then message_id end)
        as experiment_view_incomplete_example,
    sum(case when event_name = 'feature_used' and {{ json_label('properties', 'feature') }} = '(invalid)'
             then 1 else 0 end) as invalid_feature,
    min(case when event_name = 'feature_used' and {{ json_label('properties', 'feature') }} = '(invalid)'
             then message_id end) as invalid_feature_example,
    sum(case when {{ long_id_condition }} then 1 else 0 end) as long_id,
    min(case when {{ long_id_condition }} then message_id end) as long_id_example,
    sum(case when event_name = '(invalid)' then 1 else 0 end) as unnamed_event,
    min(case when event_name = '(invalid)' then message_id end) as unnamed_event_example,
    {{ staged_through() }} as staged_through
from {{ ref('stg_events') }}
{% if is_incremental() %}
where user_id in (select user_id from {{ users_in_scope() }})
{% endif %}
group by user_id
