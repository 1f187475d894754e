"""intermediate.int_experiment_cupac on DuckDB: ml/experiment_cupac.py's cross-fitted predictions over each exposed
user's metric values and pre-exposure features. Spark runs the same code through
models/intermediate/on_spark/int_experiment_cupac.sql."""

from ml.experiment_cupac import INPUT_COLUMNS, cupac_frame


def model(dbt, session):
    dbt.config(materialized="table")
    metrics = dbt.ref("int_experiment_user_metrics").df()
    features = dbt.ref("int_experiment_user_features").df()
    users = metrics.merge(features, on=["experiment_id", "user_id"], how="inner", suffixes=("", "_features"))
    return cupac_frame(users[INPUT_COLUMNS])
