-- Classic and unbounded retention of first_ever cohorts at day, week and month grain (calendar windows).
{% for grain in ['day', 'week', 'month'] %}
select * from (
    {{ cohort_retention_for_grain(grain, ref('int_user_daily_activity'), ref('int_as_of')) }}
) as {{ grain }}_retention
{% if not loop.last %}union all{% endif %}
{% endfor %}
