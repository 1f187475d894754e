-- New, returning, resurrecting and dormant users per day, week and month (dormant is a positive count here;
-- charts draw it below zero).
{% for grain in ['day', 'week', 'month'] %}
select * from ({{ lifecycle_for_grain(grain) }}) as {{ grain }}_lifecycle
{% if not loop.last %}union all{% endif %}
{% endfor %}
