-- First_ever retention (calendar windows) split by first-touch channel and by user traits, week and month grain.
{%- set dimensions = ['first_touch_channel', 'country', 'plan'] %}
{%- set grains = ['week', 'month'] %}
{% for dimension in dimensions %}
{%- set outer_loop = loop %}
{%- for grain in grains %}
select
    '{{ dimension }}' as dimension,
    split_retention.dimension_value,
    '{{ grain }}' as grain,
    {{ retention_measures('split_retention') }}
from ({{ cohort_retention(start='first_ever', cohort_grain=grain, dimension=dimension) }}) as split_retention
{% if not (outer_loop.last and loop.last) %}union all{% endif %}
{%- endfor %}
{%- endfor %}
