-- One row per exposed user, experiment and metric (int_experiment_metric_definitions: seed experiment_metrics and
-- a default conversion metric for an experiment without rows there): the metric after the exposure (y),
-- the same metric over the pre-period before it (x, the covariate of CUPED) and, for a ratio metric, the
-- denominator (d). Capping at a percentile happens in int_experiment_metric_moments, over all exposed users.
--
-- Windows, as int_experiment_exposures counts the goal: an event counts after the exposure when
-- exposed_at < event_at <= exposed_at + window_days; a retention metric counts activity in period k,
-- exposed_at + k * period_days < event_at <= exposed_at + (k + 1) * period_days; the pre-period is
-- exposed_at - pre_period_days < event_at < exposed_at (before the exposure's own experiment_viewed, which would
-- otherwise make every user active in the pre-period). Events after as_of do not count; is_window_complete says
-- whether the window has ended by then.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

exposures as (

    select experiment_id, user_id, variant, exposed_at
    from {{ ref('int_experiment_exposures') }}

),

metrics as (

    select
        experiment_id,
        metric,
        kind,
        event_name,
        coalesce(denominator_event, event_name) as denominator_event,
        coalesce(window_days, 7) as window_days,
        coalesce(period_days, 7) as period_days,
        coalesce(period_index, 1) as period_index,
        coalesce(pre_period_days, 0) as pre_period_days
    from {{ ref('int_experiment_metric_definitions') }}
    where kind in ('conversion', 'count', 'sum', 'ratio', 'retention')

),

exposed_metrics as (

    select
        exposures.experiment_id,
        exposures.user_id,
        exposures.variant,
        exposures.exposed_at,
        metrics.metric,
        metrics.kind,
        metrics.event_name,
        metrics.denominator_event,
        case
            when metrics.kind = 'retention'
                then {{ dbt.dateadd('day', 'metrics.period_days * metrics.period_index', 'exposures.exposed_at') }}
            else exposures.exposed_at
        end as window_start_at,
        case
            when metrics.kind = 'retention'
                then {{ dbt.dateadd('day', 'metrics.period_days * (metrics.period_index + 1)', 'exposures.exposed_at') }}
            else {{ dbt.dateadd('day', 'metrics.window_days', 'exposures.exposed_at') }}
        end as window_end_at,
        {{ dbt.dateadd('day', '-metrics.pre_period_days', 'exposures.exposed_at') }} as pre_start_at
    from exposures
    inner join metrics on exposures.experiment_id = metrics.experiment_id

),

-- the exposed users' events that any of their metrics could count, before as_of
user_events as (

    select events.user_id, events.event_name, events.event_at, events.is_activity, events.revenue
    from {{ ref('stg_events') }} as events
    cross join as_of_point
    where events.event_at <= as_of_point.as_of
      and events.user_id in (select user_id from exposures)

),

-- per user, experiment and metric: what the events in the window and in the pre-period add up to
counted as (

    select
        exposed_metrics.experiment_id,
        exposed_metrics.metric,
        exposed_metrics.user_id,
        {% for side, inside in [
            ('post', 'user_events.event_at > exposed_metrics.window_start_at
                      and user_events.event_at <= exposed_metrics.window_end_at'),
            ('pre', 'user_events.event_at > exposed_metrics.pre_start_at
                     and user_events.event_at < exposed_metrics.exposed_at'),
        ] -%}
        sum(case when {{ inside }} and user_events.event_name = exposed_metrics.event_name then 1 else 0 end)
            as {{ side }}_events,
        sum(case when {{ inside }} and user_events.event_name = exposed_metrics.event_name
                 then user_events.revenue end) as {{ side }}_revenue,
        sum(case when {{ inside }} and user_events.is_activity then 1 else 0 end) as {{ side }}_active_events,
        sum(case when {{ inside }} and user_events.event_name = exposed_metrics.denominator_event then 1 else 0 end)
            as {{ side }}_denominator_events{{ ',' if not loop.last }}
        {% endfor %}
    from exposed_metrics
    inner join user_events
        on user_events.user_id = exposed_metrics.user_id
        and user_events.event_at > exposed_metrics.pre_start_at
        and user_events.event_at <= exposed_metrics.window_end_at
    group by exposed_metrics.experiment_id, exposed_metrics.metric, exposed_metrics.user_id

)

select
    exposed_metrics.experiment_id,
    exposed_metrics.metric,
    exposed_metrics.kind,
    exposed_metrics.user_id,
    exposed_metrics.variant,
    exposed_metrics.exposed_at,
    exposed_metrics.window_end_at,
    exposed_metrics.window_end_at <= as_of_point.as_of as is_window_complete,
    {% for side, name in [('post', 'metric_value'), ('pre', 'pre_period_value')] -%}
    cast(case exposed_metrics.kind
        when 'conversion' then case when coalesce(counted.{{ side }}_events, 0) > 0 then 1 else 0 end
        when 'count' then coalesce(counted.{{ side }}_events, 0)
        when 'retention' then case when coalesce(counted.{{ side }}_active_events, 0) > 0 then 1 else 0 end
        else coalesce(counted.{{ side }}_revenue, 0)
    end as double) as {{ name }},
    {% endfor -%}
    cast(case when exposed_metrics.kind = 'ratio' then coalesce(counted.post_denominator_events, 0) else 0 end
        as double) as denominator_value
from exposed_metrics
cross join as_of_point
left join counted
    on exposed_metrics.experiment_id = counted.experiment_id
    and exposed_metrics.metric = counted.metric
    and exposed_metrics.user_id = counted.user_id
