"""The ml.* tables in the warehouse: their contract columns and a whole-table replace in one transaction."""

from __future__ import annotations

import duckdb
import pandas as pd

from stores.schema import ML_CONTRACT_TABLES, ML_SERVED_TABLES, TABLES, ensure

# the columns of the ml.* tables the ML assets replace whole, from their one declaration in stores.schema
CONTRACTS: dict[str, dict[str, str]] = {
    name.removeprefix("ml."): TABLES[name].column_types for name in (*ML_CONTRACT_TABLES, *ML_SERVED_TABLES)
}


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Replace every row of ml.<table> with `frame` (contract columns, cast to their types); returns the rows."""
    if table not in CONTRACTS:
        raise ValueError(f"ml.{table} is not an ml contract table ({sorted(CONTRACTS)})")
    columns = CONTRACTS[table]
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ValueError(f"rows for ml.{table} lack columns {sorted(missing)}")
    select = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in columns.items())
    ensure(con, f"ml.{table}")
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
