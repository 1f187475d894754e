-- Classic and unbounded retention of first_ever cohorts at day, week and month grain (calendar windows).
{% for grain in ['day', 'week', 'month'] %}
select '{{ grain }}' as grain, {{ retention_measures('grain_retention') }}
from ({{ cohort_retention(start='first_ever', cohort_grain=grain) }}) as grain_retention
{% if not loop.last %}union all{% endif %}
{% endfor %}
