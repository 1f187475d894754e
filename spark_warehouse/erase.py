"""Forget users in the Spark target's Parquet tables (privacy.erase calls this when DATA_DIR/spark exists).

raw/ is brought in line with the ledger by raw_export after the ledger's rows are deleted. Every other table folder
(the tables dbt built under warehouse/, the ML assets' under ml/) whose files have an owner column loses the users'
rows, one data folder at a time (the table's own, or each partition's, as <column>=<value>/ below it): the rows
kept are written to one new file, hidden while written (Spark skips names starting with '.', DuckDB's
glob *.parquet skips the .partial ending), the old files are deleted, and the new one takes a visible name. Spark
lists a Parquet table's folder when it reads it, so no metastore update is needed. Table models are then rebuilt by
dbt on Spark, as on DuckDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import duckdb

from spark_warehouse.layout import spark_root


def table_folders(data_dir: Path) -> list[Path]:
    """The folders of the Spark target's tables other than raw/: warehouse/<schema>.db/<table> and ml/<table>."""
    root = spark_root(data_dir)
    folders = [path for path in (root / "warehouse").glob("*.db/*") if path.is_dir()]
    folders += [path for path in (root / "ml").glob("*") if path.is_dir()]
    return sorted(folders)


def erase_users(data_dir: Path, ids: Iterable[str], owner_columns: Iterable[str]) -> dict[str, int]:
    """Remove every row whose owner column (the first of `owner_columns` a table has, else anonymous_id) holds one
    of `ids`, as privacy.warehouse does in warehouse.duckdb; returns rows removed per table folder."""
    wanted = sorted(set(ids))
    removed: dict[str, int] = {}
    if not wanted:
        return removed
    with duckdb.connect() as con:
        con.execute("create temp table erased_ids as select unnest($ids) as id", {"ids": wanted})
        for table_folder in table_folders(data_dir):
            for folder in _data_folders(table_folder):
                count = _erase_in_folder(con, folder, owner_columns)
                if count:
                    name = str(table_folder.relative_to(spark_root(data_dir)))
                    removed[name] = removed.get(name, 0) + count
    return removed


def _erase_in_folder(con: duckdb.DuckDBPyConnection, folder: Path, owner_columns: Iterable[str]) -> int:
    """Rewrite one data folder's files without the rows of `erased_ids`; returns the rows removed."""
    files = _data_files(folder)
    if not files:
        return 0
    listed = "[" + ", ".join(_literal(str(path)) for path in files) + "]"
    # the files alone: a partition's value is in its folder's name, never an owner column, and must not be written
    # into the new file
    rows = f"read_parquet({listed}, hive_partitioning = false)"
    columns = {row[0] for row in con.execute(f"describe select * from {rows}").fetchall()}
    present = [column for column in owner_columns if column in columns]
    if not present and "anonymous_id" in columns:
        present = ["anonymous_id"]
    if not present:
        return 0
    naming = " or ".join(f'"{column}" in (select id from erased_ids)' for column in present)
    count = con.execute(f"select count(*) from {rows} where {naming}").fetchone()[0]
    if not count:
        return 0
    final = folder / f"part-erased-{uuid.uuid4().hex}.parquet"
    partial = folder / f".{final.name}.partial"
    con.execute(
        f"copy (select * from {rows} where not coalesce({naming}, false)) to {_literal(str(partial))} (format parquet)"
    )
    for path in files:
        path.unlink()
    os.replace(partial, final)
    return int(count)


def _data_folders(table_folder: Path) -> list[Path]:
    """A table's folder and its partitions' folders (Spark's hidden and bookkeeping folders left out)."""
    nested = [
        path
        for path in table_folder.rglob("*")
        if path.is_dir() and not any(part.startswith((".", "_")) for part in path.relative_to(table_folder).parts)
    ]
    return [table_folder, *sorted(nested)]


def _data_files(folder: Path) -> list[Path]:
    """A table folder's Parquet files (not Spark's hidden or bookkeeping files)."""
    return sorted(path for path in folder.glob("*.parquet") if not path.name.startswith((".", "_")))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
