-- marts.experiment_results on Spark: the same statistics as on DuckDB (ml/experiment_results.py), computed by
-- streaming each experiment's variant rows through `python -m ml.experiment_results` with Spark's script transform
-- (dbt-spark runs Python models only on Databricks). The rows cross as JSON lines, so that no client value (a
-- variant name with a tab or a newline) can break a row. The Python is the var pyspark_python, else the env var
-- PYSPARK_PYTHON (Spark's own setting for its Python workers); every machine of a cluster needs the project there.
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
{%- set command = var('pyspark_python', env_var('PYSPARK_PYTHON', 'python3')) ~ ' -m ml.experiment_results '
    ~ var('experiment_min_users') ~ ' ' ~ var('experiment_srm_alpha') -%}

with variant_rows as (

    -- one experiment's rows reach one script, together
    select experiment_id, to_json(struct(*)) as variant_json
    from {{ ref('int_experiment_variants') }}
    distribute by experiment_id

),

result_rows as (

    select transform(variant_json) using '{{ command | replace("'", "\\'") }}' as (result_json string)
    from variant_rows

),

results as (

    select from_json(result_json, '{{ result_schema | replace("\n", " ") }}') as result
    from result_rows

)

select result.* from results
