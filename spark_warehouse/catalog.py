"""warehouse.duckdb as the catalog of the Spark target: what the Python steps read and write around dbt.

Before dbt runs on Spark, `export_ledger` brings Spark's inputs up to date from warehouse.duckdb: raw.* (the
ingestion ledger, spark_warehouse.raw_export) and ml.* (written there by the ML assets) as Parquet. After it runs,
`attach_tables` gives warehouse.duckdb a view over the Parquet files of every table dbt built on Spark, under the
same schema and name, so that the suites, the ML assets, activation, the serving copy and analysts read
`marts.daily_kpis` the same way on both engines, without a copy.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from spark_warehouse.layout import ML_TABLES, SPARK_ONLY_COLUMNS, external_table_dir, spark_root
from spark_warehouse.raw_export import PART_PREFIX, ExportSummary, export_raw, whole_table, write_parquet
from stores.schema import ensure

# Tables the Spark incremental materialization keeps only while a run replaces rows (macros/spark/incremental.sql)
WORK_SUFFIXES = ("__dbt_new", "__dbt_kept", "__dbt_tmp", "__users_in_scope")


def export_ledger(con: duckdb.DuckDBPyConnection, data_dir: Path) -> ExportSummary:
    """raw.* and ml.* of warehouse.duckdb to the Parquet tables Spark reads; returns what raw's export wrote."""
    ensure(con, "raw")
    summary = export_raw(con, data_dir)
    present = {
        name for (name,) in con.execute("select table_name from duckdb_tables() where schema_name = 'ml'").fetchall()
    }
    for table in ML_TABLES:
        if table in present:
            folder = external_table_dir(data_dir, "ml", table)
            folder.mkdir(parents=True, exist_ok=True)
            write_parquet(con, whole_table(con, table, "ml"), {}, folder / f"{PART_PREFIX}0.parquet")
    return summary


def spark_tables(data_dir: Path) -> list[tuple[str, str, Path]]:
    """(schema, table, folder) of every table dbt built on Spark that has data files."""
    found = []
    for folder in sorted((spark_root(data_dir) / "warehouse").glob("*.db/*")):
        if not folder.is_dir() or folder.name.endswith(WORK_SUFFIXES):
            continue
        if any(path for path in folder.rglob("*.parquet") if not path.name.startswith((".", "_"))):
            found.append((folder.parent.name.removesuffix(".db"), folder.name, folder))
    return found


def attach_tables(con: duckdb.DuckDBPyConnection, data_dir: Path) -> list[str]:
    """A view in `con`'s database over each of Spark's tables (a table of the same name, left by a DuckDB build
    before the switch, is replaced); returns the views' names."""
    attached = []
    for schema, table, folder in spark_tables(data_dir):
        name = f'"{schema}"."{table}"'
        files = (folder / "**" / "*.parquet").as_posix().replace("'", "''")
        con.execute(f'create schema if not exists "{schema}"')
        kind = con.execute(
            "select 'table' from duckdb_tables() where database_name = current_database() and schema_name = ? "
            "and table_name = ?",
            [schema, table],
        ).fetchone()
        if kind:
            con.execute(f"drop table {name}")
        spark_only = [column for column in SPARK_ONLY_COLUMNS if any(folder.glob(f"{column}=*"))]
        columns = f"* exclude ({', '.join(spark_only)})" if spark_only else "*"
        con.execute(
            f"create or replace view {name} as select {columns} from read_parquet('{files}', hive_partitioning = true)"
        )
        attached.append(f"{schema}.{table}")
    return attached
