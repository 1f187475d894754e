"""The ml.* tables in the warehouse: their contract columns and a whole-table replace in one transaction."""

from __future__ import annotations

import duckdb
import pandas as pd

# Same columns as dbt's macro create_ml_contract_tables (which creates them empty before any training).
CONTRACTS: dict[str, dict[str, str]] = {
    "user_clusters": {
        "user_id": "varchar",
        "cluster_id": "integer",
        "cluster_name": "varchar",
        "model_version": "varchar",
    },
    "churn_scores": {
        "user_id": "varchar",
        "churn_probability": "double",
        "risk_tier": "varchar",
        "as_of": "timestamp",
        "model_version": "varchar",
    },
    "model_metrics": {
        "model_name": "varchar",
        "model_version": "varchar",
        "is_champion": "boolean",
        "trained_at": "timestamp",
        "as_of": "timestamp",
        "metric": "varchar",
        "value": "double",
        "run_id": "varchar",
    },
}


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Replace every row of ml.<table> with `frame` (contract columns, cast to their types); returns the rows."""
    if table not in CONTRACTS:
        raise ValueError(f"ml.{table} is not an ml contract table ({sorted(CONTRACTS)})")
    columns = CONTRACTS[table]
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ValueError(f"rows for ml.{table} lack columns {sorted(missing)}")
    definition = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    select = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in columns.items())
    con.execute("create schema if not exists ml")
    con.execute(f"create table if not exists ml.{table} ({definition})")  # names from CONTRACTS only
    rows = frame[list(columns)]
    con.register("ml_rows", rows)
    try:
        con.execute("begin transaction")
        con.execute(f"delete from ml.{table}")
        con.execute(f"insert into ml.{table} select {select} from ml_rows")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("ml_rows")
    return len(rows)


def empty_frame(table: str) -> pd.DataFrame:
    """No rows, with the contract's columns."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in CONTRACTS[table]})
