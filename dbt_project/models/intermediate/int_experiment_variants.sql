-- One row per experiment and variant: the counts marts.experiment_results computes its statistics from, with the
-- experiment's settings (seed experiments, defaults for experiments it does not list).
--
-- Variant names and experiment ids are client values, so what one client can add is bounded: per experiment the
-- control, the variants named in planned_split and the largest others up to var experiment_max_variants rows keep
-- their own row, the rest fold into one '(other unplanned)' row; experiments not in the seed beyond the largest
-- var experiment_max_unplanned_experiments fold into one '(other unplanned)' experiment. A client's own
-- '(other unplanned)' always folds, so the label stays unique. marts.data_health_flags counts what was folded.
{%- set fold = "'(other unplanned)'" %}
with exposures as (

    select * from {{ ref('int_experiment_exposures') }}

),

seed as (

    select * from {{ ref('experiments') }}

),

-- counts per name pair first: the folded rows are then sums of exact (integer, decimal) sums
pair_counts as (

    select
        experiment_id,
        variant,
        count(*) as users,
        sum(case when converted then 1 else 0 end) as conversions,
        sum(revenue) as revenue,
        -- exact decimal sums, so the mean and deviation are the same on every run (a parallel stddev_samp over
        -- doubles adds in a different order each time and moves the last bits)
        -- (decimal(38, 4) squared is decimal(38, 8): 30 integer digits, room for capped revenue of many users)
        sum(cast(revenue as decimal(38, 4)) * cast(revenue as decimal(38, 4))) as revenue_squares,
        sum(case when is_window_complete then 1 else 0 end) as users_window_complete
    from exposures
    group by experiment_id, variant

),

experiment_ranks as (

    select
        totals.experiment_id,
        seed.experiment_id is not null as is_planned_experiment,
        seed.experiment_id is null
            and (totals.experiment_id = {{ fold }}
                 or row_number() over (
                        partition by seed.experiment_id is null order by totals.users desc, totals.experiment_id
                    ) > {{ var('experiment_max_unplanned_experiments') }}) as is_folded_experiment
    from (select experiment_id, sum(users) as users from pair_counts group by experiment_id) as totals
    left join seed on totals.experiment_id = seed.experiment_id

),

variant_ranks as (

    select
        pair_counts.experiment_id,
        pair_counts.variant,
        -- the control and the variants planned_split names are never folded
        pair_counts.variant = coalesce(seed.control_variant, 'control')
            or coalesce({{ dbt.position(
                dbt.concat(["';'", "replace(pair_counts.variant, ' ', '')", "'='"]),
                dbt.concat(["';'", "replace(seed.planned_split, ' ', '')", "';'"])) }} > 0, false) as is_named_in_seed
    from pair_counts
    left join seed on pair_counts.experiment_id = seed.experiment_id

),

labelled as (

    select
        pair_counts.*,
        case when experiment_ranks.is_folded_experiment then {{ fold }} else pair_counts.experiment_id end
            as experiment_label,
        case
            when experiment_ranks.is_folded_experiment or pair_counts.variant = {{ fold }} then {{ fold }}
            when variant_ranks.is_named_in_seed then pair_counts.variant
            when count(*) over (partition by pair_counts.experiment_id) > {{ var('experiment_max_variants') }}
             and row_number() over (
                    partition by pair_counts.experiment_id, variant_ranks.is_named_in_seed
                    order by pair_counts.users desc, pair_counts.variant
                 ) + (sum(case when variant_ranks.is_named_in_seed then 1 else 0 end)
                          over (partition by pair_counts.experiment_id))
                 > {{ var('experiment_max_variants') }} - 1
                then {{ fold }}
            else pair_counts.variant
        end as variant_label
    from pair_counts
    inner join experiment_ranks on pair_counts.experiment_id = experiment_ranks.experiment_id
    inner join variant_ranks
        on pair_counts.experiment_id = variant_ranks.experiment_id and pair_counts.variant = variant_ranks.variant

),

counts as (

    select
        experiment_label as experiment_id,
        variant_label as variant,
        count(*) as variant_names,
        sum(users) as users,
        sum(conversions) as conversions,
        sum(revenue) as revenue,
        sum(revenue_squares) as revenue_squares,
        sum(users_window_complete) as users_window_complete
    from labelled
    group by experiment_label, variant_label

),

moments as (

    select
        *,
        cast(revenue as double) / users as revenue_per_user,
        case
            when users > 1 then sqrt(greatest(
                cast(revenue_squares - cast(revenue as decimal(38, 4)) * revenue / users as double) / (users - 1), 0
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
    coalesce(seed.goal_event, 'order_completed') as goal_event,
    coalesce(seed.window_days, 7) as window_days,
    coalesce(seed.control_variant, 'control') as control_variant,
    seed.planned_split,
    seed.factors,
    coalesce(seed.correction, 'holm') as correction,
    coalesce(seed.target_lift, {{ var('experiment_target_lift') }}) as target_lift,
    seed.experiment_id is not null as is_planned_experiment,
    moments.variant_names
from moments
left join seed on moments.experiment_id = seed.experiment_id
