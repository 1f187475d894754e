-- One row per experiment, metric (int_experiment_metric_definitions) and variant: the sums that the statistics of
-- ml/experiment_stats.py need (users, and sums of y, y^2, x, x^2, xy, d, d^2, yd, c, c^2, cy over the variant's
-- users, and of xc; y the metric, x its pre-period value, d a ratio metric's denominator, c CUPAC's prediction of y
-- from int_experiment_cupac), so that only these cross into Python.
--
-- A metric with cap_percentile has y and x capped at that percentile of y over all the experiment's exposed users
-- (linear interpolation between the two nearest users' values, as DuckDB's quantile_cont and Spark's percentile),
-- so that a few extreme users (or a client's flood of orders) cannot dominate a variant's mean. Variants are those
-- of int_experiment_variants (planned ones by name, a client's unplanned ones beyond its bounds folded into
-- '(other unplanned)'). Sums are exact decimals, so that the table is the same on every rebuild.
-- Each user's y, x, d and c is bounded first (macro experiment_bounded_value).
{%- set fold = "'(other unplanned)'" %}
with user_metrics as (

    select * from {{ ref('int_experiment_user_metrics') }}

),

metrics as (

    select * from {{ ref('int_experiment_metric_definitions') }}

),

-- the variant names int_experiment_variants keeps (the others are folded there too)
kept_variants as (

    select experiment_id, variant from {{ ref('int_experiment_variants') }}
    where variant <> {{ fold }}

),

-- the same on every variant row of an experiment
experiment_settings as (

    select distinct experiment_id, control_variant, planned_split, factors, correction, target_lift
    from {{ ref('int_experiment_variants') }}

),

-- days on which the experiment exposed someone: its traffic per day is users / exposure_days
exposure_days as (

    select experiment_id, count(distinct cast(exposed_at as date)) as exposure_days
    from user_metrics
    group by experiment_id

),

ranked_values as (

    select
        user_metrics.experiment_id,
        user_metrics.metric,
        user_metrics.metric_value,
        row_number() over (
            partition by user_metrics.experiment_id, user_metrics.metric order by user_metrics.metric_value
        ) - 1 as value_position,
        (count(*) over (partition by user_metrics.experiment_id, user_metrics.metric) - 1)
            * metrics.cap_percentile as cap_position
    from user_metrics
    inner join metrics
        on user_metrics.experiment_id = metrics.experiment_id and user_metrics.metric = metrics.metric
    where metrics.cap_percentile > 0 and metrics.cap_percentile < 1

),

-- the two users' values the cap lies between, and how far between them
cap_points as (

    select
        experiment_id,
        metric,
        max(case when value_position = floor(cap_position) then metric_value end) as lower_value,
        max(case when value_position = ceil(cap_position) then metric_value end) as upper_value,
        max(cap_position) - floor(max(cap_position)) as fraction
    from ranked_values
    group by experiment_id, metric

),

caps as (

    select experiment_id, metric, lower_value + fraction * (upper_value - lower_value) as cap_value
    from cap_points

),

capped as (

    select
        user_metrics.experiment_id,
        user_metrics.metric,
        user_metrics.kind,
        coalesce(kept_variants.variant, {{ fold }}) as variant,
        metrics.role,
        metrics.direction,
        metrics.tolerance,
        coalesce(metrics.pre_period_days, 0) as pre_period_days,
        caps.cap_value,
        user_metrics.is_window_complete,
        {{ experiment_bounded_value('case when user_metrics.metric_value > caps.cap_value then caps.cap_value
                                else user_metrics.metric_value end') }} as y,
        {{ experiment_bounded_value('case when user_metrics.pre_period_value > caps.cap_value then caps.cap_value
                                else user_metrics.pre_period_value end') }} as x,
        {{ experiment_bounded_value('user_metrics.denominator_value') }} as d,
        {{ experiment_bounded_value('cupac.cupac_prediction') }} as c
    from user_metrics
    inner join metrics
        on user_metrics.experiment_id = metrics.experiment_id and user_metrics.metric = metrics.metric
    left join caps
        on user_metrics.experiment_id = caps.experiment_id and user_metrics.metric = caps.metric
    left join kept_variants
        on user_metrics.experiment_id = kept_variants.experiment_id and user_metrics.variant = kept_variants.variant
    left join {{ ref('int_experiment_cupac') }} as cupac
        on user_metrics.experiment_id = cupac.experiment_id
        and user_metrics.metric = cupac.metric
        and user_metrics.user_id = cupac.user_id

)

select
    capped.experiment_id,
    capped.metric,
    capped.kind,
    capped.variant,
    capped.role,
    capped.direction,
    capped.tolerance,
    capped.pre_period_days,
    capped.cap_value,
    experiment_settings.control_variant,
    experiment_settings.planned_split,
    experiment_settings.factors,
    experiment_settings.correction,
    experiment_settings.target_lift,
    exposure_days.exposure_days,
    count(*) as users,
    sum(case when is_window_complete then 1 else 0 end) as users_window_complete,
    count(c) as users_cupac,
    {% for name, expression in [
        ('sum_y', 'y'), ('sum_y2', 'y * y'), ('sum_x', 'x'), ('sum_x2', 'x * x'), ('sum_xy', 'x * y'),
        ('sum_d', 'd'), ('sum_d2', 'd * d'), ('sum_yd', 'y * d'), ('sum_c', 'c'), ('sum_c2', 'c * c'),
        ('sum_cy', 'c * y'), ('sum_xc', 'x * c'),
    ] -%}
    cast(sum({{ expression }}) as double) as {{ name }}{{ ',' if not loop.last }}
    {% endfor %}
from capped
inner join experiment_settings on capped.experiment_id = experiment_settings.experiment_id
inner join exposure_days on capped.experiment_id = exposure_days.experiment_id
group by
    capped.experiment_id, capped.metric, capped.kind, capped.variant, capped.role, capped.direction, capped.tolerance,
    capped.pre_period_days, capped.cap_value, experiment_settings.control_variant, experiment_settings.planned_split,
    experiment_settings.factors, experiment_settings.correction, experiment_settings.target_lift,
    exposure_days.exposure_days
