-- Retention of cohorts that start with a specific event: once per user (first_matching) or every period the
-- event happens (recurring), calendar windows at week and month grain.
{%- set starts = [
    ('first_matching', 'signed_up'),
    ('first_matching', 'order_completed'),
    ('recurring', 'order_completed'),
] %}
{%- set grains = ['week', 'month'] %}
{% for start, start_event in starts %}
{%- set outer_loop = loop %}
{%- for grain in grains %}
select
    '{{ start }}' as start_type,
    '{{ start_event }}' as start_event,
    '{{ grain }}' as grain,
    {{ retention_measures('start_retention') }}
from ({{ cohort_retention(start=start, start_events=[start_event], cohort_grain=grain) }}) as start_retention
{% if not (outer_loop.last and loop.last) %}union all{% endif %}
{%- endfor %}
{%- endfor %}
