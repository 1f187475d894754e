"""marts.experiment_results on DuckDB: the statistics of ml/experiment_results.py over the variant counts.

Spark runs the same code through models/marts/experiments/on_spark/experiment_results.sql (its dbt adapter runs
Python models only on Databricks); see ml/experiment_results.py for what each column means.
"""

from ml.experiment_results import results_frame


def to_pandas(relation: object):
    """A dbt.ref() result as pandas: DuckDB relations have .df(), Spark DataFrames .toPandas()."""
    return relation.df() if hasattr(relation, "df") else relation.toPandas()


def model(dbt, session):
    dbt.config(materialized="table")
    min_users = int(dbt.config.get("experiment_min_users"))
    srm_alpha = float(dbt.config.get("experiment_srm_alpha"))
    return results_frame(to_pandas(dbt.ref("int_experiment_variants")), min_users, srm_alpha)
