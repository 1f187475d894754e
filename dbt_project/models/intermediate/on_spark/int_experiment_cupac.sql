-- intermediate.int_experiment_cupac on Spark: the same predictions as on DuckDB (ml/experiment_cupac.py), computed
-- by streaming each experiment and metric's users through `python -m ml.experiment_cupac` (macro python_transform).
{{ config(materialized='table') }}

{%- set user_rows -%}
(
    select
        user_metrics.experiment_id,
        user_metrics.metric,
        user_metrics.user_id,
        user_metrics.metric_value,
        user_metrics.pre_period_value,
        user_features.has_history,
        {%- for name in ml_feature_names() %}
        user_features.{{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_experiment_user_metrics') }} as user_metrics
    inner join {{ ref('int_experiment_user_features') }} as user_features
        on user_metrics.experiment_id = user_features.experiment_id
        and user_metrics.user_id = user_features.user_id
) as user_rows
{%- endset -%}

{{ python_transform(
    user_rows, 'experiment_id, metric', 'ml.experiment_cupac', [],
    'experiment_id string, metric string, user_id string, cupac_prediction double',
) }}
