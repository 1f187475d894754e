-- One row per user and experiment: the variant of the user's first experiment_viewed event (the exposure), and
-- what the user did in the experiment's window after it (goal events, revenue). Settings come from seed
-- experiments with defaults for experiments it does not list.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

views as (

    select
        events.user_id,
        events.message_id,
        events.event_at,
        -- client text: an object, an array or a name longer than var experiment_max_name_length is '(invalid)'
        {{ json_label('events.properties', 'experiment_id', var('experiment_max_name_length')) }} as experiment_id,
        {{ json_label('events.properties', 'variant', var('experiment_max_name_length')) }} as variant
    from {{ ref('stg_events') }} as events
    cross join as_of_point
    where events.event_name = 'experiment_viewed'
      and events.event_at <= as_of_point.as_of
      and events.user_id is not null

),

first_views as (

    select user_id, experiment_id, variant, event_at as exposed_at
    from (
        select
            views.*,
            row_number() over (partition by user_id, experiment_id order by event_at, message_id) as view_rank
        from views
        where experiment_id is not null and variant is not null
    ) as ranked_views
    where view_rank = 1

),

settings as (

    select
        seen.experiment_id,
        coalesce(experiments.goal_event, 'order_completed') as goal_event,
        coalesce(experiments.window_days, 7) as window_days
    from (select distinct experiment_id from first_views) as seen
    left join {{ ref('experiments') }} as experiments on seen.experiment_id = experiments.experiment_id

),

exposures as (

    select
        first_views.*,
        settings.goal_event,
        settings.window_days,
        {{ dbt.dateadd('day', 'settings.window_days', 'first_views.exposed_at') }} as window_end_at
    from first_views
    inner join settings on first_views.experiment_id = settings.experiment_id

),

window_events as (

    select
        exposures.experiment_id,
        exposures.user_id,
        sum(case when events.event_name = exposures.goal_event then 1 else 0 end) as goal_events,
        coalesce(sum(events.revenue), 0) as revenue
    from exposures
    inner join {{ ref('stg_events') }} as events
        on events.user_id = exposures.user_id
        and events.event_at > exposures.exposed_at
        and events.event_at <= exposures.window_end_at
    cross join as_of_point
    where events.event_at <= as_of_point.as_of
      and (events.event_name = exposures.goal_event or events.revenue is not null)
    group by exposures.experiment_id, exposures.user_id

)

select
    exposures.experiment_id,
    exposures.user_id,
    exposures.variant,
    exposures.exposed_at,
    exposures.goal_event,
    exposures.window_days,
    exposures.window_end_at,
    exposures.window_end_at <= as_of_point.as_of as is_window_complete,
    coalesce(window_events.goal_events, 0) > 0 as converted,
    coalesce(window_events.goal_events, 0) as goal_events,
    -- capped at +- var experiment_max_user_revenue, so that one client's flood of orders can neither overflow the
    -- decimal moments of int_experiment_variants nor dominate a variant's mean (flagged below)
    cast(
        case
            when coalesce(window_events.revenue, 0) > {{ var('experiment_max_user_revenue') }}
                then {{ var('experiment_max_user_revenue') }}
            when coalesce(window_events.revenue, 0) < -{{ var('experiment_max_user_revenue') }}
                then -{{ var('experiment_max_user_revenue') }}
            else coalesce(window_events.revenue, 0)
        end as decimal(18, 4)
    ) as revenue,
    abs(coalesce(window_events.revenue, 0)) > {{ var('experiment_max_user_revenue') }} as is_revenue_capped
from exposures
cross join as_of_point
left join window_events
    on exposures.experiment_id = window_events.experiment_id and exposures.user_id = window_events.user_id
