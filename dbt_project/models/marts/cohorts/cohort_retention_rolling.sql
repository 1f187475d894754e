-- Rolling-window retention: period k holds days [k * L, (k + 1) * L) after each member's own start, for
-- L = 1, 7 and 30 days; cohorts bucketed by week or month of the start. Cohorts start at first activity or at
-- signup, overall and by first-touch channel (7-day windows), e.g. "March signups from paid search, week 4".
{%- set variants = [
    ('first_activity', 'first_ever', none, 'week', 1, none),
    ('first_activity', 'first_ever', none, 'week', 7, none),
    ('first_activity', 'first_ever', none, 'month', 7, none),
    ('first_activity', 'first_ever', none, 'month', 30, none),
    ('signed_up', 'first_matching', ['signed_up'], 'week', 7, none),
    ('signed_up', 'first_matching', ['signed_up'], 'month', 7, none),
    ('signed_up', 'first_matching', ['signed_up'], 'month', 7, 'first_touch_channel'),
    ('first_activity', 'first_ever', none, 'month', 7, 'first_touch_channel'),
] %}
{% for start_event, start, start_events, grain, window_days, dimension in variants %}
select
    '{{ start_event }}' as start_event,
    '{{ dimension or "all" }}' as dimension,
    {% if dimension %}rolling_retention.dimension_value{% else %}'all'{% endif %} as dimension_value,
    '{{ grain }}' as cohort_grain,
    {{ window_days }} as window_days,
    {{ retention_measures('rolling_retention') }}
from ({{ cohort_retention(start=start, start_events=start_events, cohort_grain=grain, window_days=window_days, dimension=dimension) }}) as rolling_retention
{% if not loop.last %}union all{% endif %}
{% endfor %}
