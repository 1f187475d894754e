-- First_ever retention (calendar windows) split by first-touch channel and by user traits, week and month grain.
-- Trait values are client values: beyond the var label_max_values values with the most users they are '(other)'.
{%- set dimensions = retention_split_dimensions() %}
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
