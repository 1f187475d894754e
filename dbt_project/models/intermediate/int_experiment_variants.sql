-- One row per experiment and variant: the counts marts.experiment_results computes its statistics from, with the
-- experiment's settings (seed experiments, defaults for experiments it does not list).
with exposures as (

    select * from {{ ref('int_experiment_exposures') }}

),

counts as (

    select
        experiment_id,
        variant,
        count(*) as users,
        sum(case when converted then 1 else 0 end) as conversions,
        sum(revenue) as revenue,
        avg(revenue) as revenue_per_user,
        stddev_samp(revenue) as revenue_sd,
        sum(case when is_window_complete then 1 else 0 end) as users_window_complete
    from exposures
    group by experiment_id, variant

)

select
    counts.experiment_id,
    counts.variant,
    counts.users,
    counts.conversions,
    counts.revenue,
    counts.revenue_per_user,
    counts.revenue_sd,
    counts.users_window_complete,
    coalesce(experiments.goal_event, 'order_completed') as goal_event,
    coalesce(experiments.window_days, 7) as window_days,
    coalesce(experiments.control_variant, 'control') as control_variant,
    experiments.planned_split,
    experiments.factors
from counts
left join {{ ref('experiments') }} as experiments on counts.experiment_id = experiments.experiment_id
