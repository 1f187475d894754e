-- marts.experiment_results on Spark: the same statistics as on DuckDB (ml/experiment_results.py), computed by
-- streaming each experiment's variant rows through `python -m ml.experiment_results` (macro python_transform).
{{ config(materialized='table') }}

{%- set result_schema -%}
experiment_id string, variant string, is_control boolean, users bigint, conversions bigint, conversion_rate double,
ci_low double, ci_high double, lift_vs_control double, lift_ci_low double, lift_ci_high double, p_value double,
srm_p_value double, has_sample_ratio_mismatch boolean, is_underpowered boolean, revenue_per_user double,
revenue_per_user_ci_low double, revenue_per_user_ci_high double, revenue_diff_vs_control double,
revenue_diff_ci_low double, revenue_diff_ci_high double, revenue_p_value double, goal_event string,
window_days bigint, planned_share double, users_window_complete bigint, is_planned_experiment boolean,
is_planned_variant boolean, unplanned_users bigint, variant_names bigint, config_error string
{%- endset -%}

{{ python_transform(
    ref('int_experiment_variants'), 'experiment_id', 'ml.experiment_results',
    [var('experiment_min_users'), var('experiment_srm_alpha')], result_schema,
) }}
