{#- The event-level flags of marts.data_health_flags, in order: intermediate.int_user_event_flags counts each per
    user (with its smallest example) and the mart sums them. -#}
{% macro event_flag_names() -%}
    {{ return(['revenue_unreadable', 'unknown_event_type', 'experiment_view_incomplete', 'invalid_feature', 'long_id',
               'unnamed_event']) }}
{%- endmacro %}
