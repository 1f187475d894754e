"""marts.experiment_metric_results on DuckDB: the statistics of ml/experiment_metric_results.py over the metric
sums of intermediate.int_experiment_metric_moments. Spark runs the same code through
models/marts/experiments/on_spark/experiment_metric_results.sql."""

from ml.experiment_metric_results import Settings, results_frame


def model(dbt, session):
    dbt.config(materialized="table")
    settings = Settings(
        alpha=float(dbt.config.get("experiment_alpha")),
        power=float(dbt.config.get("experiment_power")),
        srm_alpha=float(dbt.config.get("experiment_srm_alpha")),
        tuning_users=int(dbt.config.get("experiment_sequential_tuning_users")),
    )
    return results_frame(dbt.ref("int_experiment_metric_moments").df(), settings)
