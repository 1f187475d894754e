"""Where the Spark target's files live under DATA_DIR.

spark/raw/<table>/      raw.* exported from the ingestion ledger (external Parquet tables)
spark/ml/<table>/       ml.* written by the ML assets (external Parquet tables)
spark/warehouse/        tables dbt builds (<schema>.db/<table>/, Spark's managed tables)
spark/metastore_db/     the embedded Derby metastore that names them
"""

from __future__ import annotations

from pathlib import Path

RAW_TABLES = ("events", "events_rejected", "load_manifest", "batches")
ML_TABLES = ("user_clusters", "churn_scores", "model_metrics")
# Columns only Spark's tables have: the partition the incremental materialization adds to the per-user models
# (dbt_project/macros/spark/incremental.sql). Left out of the views DuckDB gets and of the comparison.
SPARK_ONLY_COLUMNS = ("spark_user_bucket",)


def spark_root(data_dir: Path) -> Path:
    """The folder of everything the Spark target keeps."""
    return data_dir / "spark"


def external_table_dir(data_dir: Path, schema: str, table: str) -> Path:
    """The folder of an external Parquet table (schema raw or ml)."""
    return spark_root(data_dir) / schema / table


def managed_table_dir(data_dir: Path, schema: str, table: str) -> Path:
    """The folder of a table dbt built on Spark (Spark's default location for a managed table)."""
    return spark_root(data_dir) / "warehouse" / f"{schema}.db" / table
