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
        -- exact decimal sums, so the mean and deviation are the same on every run (a parallel stddev_samp over
        -- doubles adds in a different order each time and moves the last bits)
        sum(cast(revenue as decimal(38, 8)) * cast(revenue as decimal(38, 8))) as revenue_squares,
        sum(case when is_window_complete then 1 else 0 end) as users_window_complete
    from exposures
    group by experiment_id, variant

),

moments as (

    select
        *,
        cast(revenue as double) / users as revenue_per_user,
        case
            when users > 1 then sqrt(greatest(
                cast(revenue_squares - cast(revenue as decimal(38, 8)) * revenue / users as double) / (users - 1), 0
            ))
        end as revenue_sd
    from counts

)

select
    moments.experiment_id,
    moments.variant,
    moments.users,
    moments.conversions,
    moments.revenue,
    moments.revenue_per_user,
    moments.revenue_sd,
    moments.users_window_complete,
    coalesce(experiments.goal_event, 'order_completed') as goal_event,
    coalesce(experiments.window_days, 7) as window_days,
    coalesce(experiments.control_variant, 'control') as control_variant,
    experiments.planned_split,
    experiments.factors
from moments
left join {{ ref('experiments') }} as experiments on moments.experiment_id = experiments.experiment_id
