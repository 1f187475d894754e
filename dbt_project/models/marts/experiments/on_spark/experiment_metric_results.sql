-- marts.experiment_metric_results on Spark: the same statistics as on DuckDB (ml/experiment_metric_results.py),
-- computed by streaming each experiment's metric sums through `python -m ml.experiment_metric_results` (macro
-- python_transform).
{{ config(materialized='table') }}

{%- set result_schema -%}
experiment_id string, metric string, kind string, role string, direction string, tolerance double, variant string,
is_control boolean, is_planned_variant boolean, users bigint, users_window_complete bigint, cap_value double,
value double, control_value double, difference double, lift double, lift_ci_low double, lift_ci_high double,
p_value double, cuped_lift double, cuped_ci_low double, cuped_ci_high double, cuped_theta double,
variance_reduction double, cupac_lift double, cupac_ci_low double, cupac_ci_high double,
cupac_variance_reduction double, estimate string, estimate_lift double, sequential_ci_low double,
sequential_ci_high double, correction string, adjusted_p_value double, adjusted_ci_low double,
adjusted_ci_high double, adjusted_sequential_ci_low double, adjusted_sequential_ci_high double,
is_significant boolean, mde double, target_lift double, users_needed double, exposure_days bigint,
days_left double, guardrail_status string, decision string, decision_variant string, decision_reason string,
decision_rules string, config_error string
{%- endset -%}

{{ python_transform(
    ref('int_experiment_metric_moments'), 'experiment_id', 'ml.experiment_metric_results',
    [var('experiment_alpha'), var('experiment_power'), var('experiment_srm_alpha'),
     var('experiment_sequential_tuning_users')],
    result_schema,
) }}
