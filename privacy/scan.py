"""Look for ids in every file under DATA_DIR: as bytes, inside gzip, in Parquet columns and in DuckDB tables.

What an auditor (and the erasure tests) run after an erasure: `python -m privacy scan --users id1,id2` lists each
place an id is still found. A DuckDB or Parquet file is also read as tables, because its compression can hide a
value from a byte search; SQLite files (MLflow, Dagster) store text as it is, so their bytes are searched.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

MAX_INFLATED_BYTES = 8 << 30


@dataclass(frozen=True)
class Finding:
    """One place an id was found."""

    path: str  # relative to DATA_DIR
    how: str  # bytes, gzip, parquet column <c>, duckdb table <t>.<c>
    value: str


def scan(data_dir: Path, ids: Iterable[str], skip: Iterable[str] = ()) -> list[Finding]:
    """Every place under `data_dir` where one of `ids` occurs (paths starting with an entry of `skip`, relative to
    data_dir, are left out: e.g. the demo generator's ground truth)."""
    values = sorted({value for value in ids if value})
    skipped = tuple(skip)
    findings: list[Finding] = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(data_dir).as_posix()
        if skipped and relative.startswith(skipped):
            continue
        findings += _scan_file(path, relative, values)
    return findings


def _scan_file(path: Path, relative: str, values: list[str]) -> list[Finding]:
    found = [Finding(relative, "bytes", value) for value in values if _in_file(path, value.encode())]
    name = path.name.lower()
    if name.endswith(".gz"):
        found += [Finding(relative, "gzip", value) for value in _in_gzip(path, values)]
    elif name.endswith(".parquet"):
        found += _in_parquet(path, relative, values)
    elif name.endswith(".duckdb") and not name.startswith("."):
        found += _in_duckdb(path, relative, values)
    return found


def _in_file(path: Path, needle: bytes, block: int = 8 << 20) -> bool:
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False


def _in_gzip(path: Path, values: list[str]) -> list[str]:
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read(MAX_INFLATED_BYTES)
    except (OSError, EOFError, zlib.error):
        return []
    return [value for value in values if value.encode() in data]


def _in_parquet(path: Path, relative: str, values: list[str]) -> list[Finding]:
    try:
        table = pq.read_table(path)
    except Exception:  # not Parquet after all: its bytes were searched
        return []
    found = []
    for column in table.column_names:
        text = "\n".join(str(item) for item in table[column].to_pylist())
        found += [Finding(relative, f"parquet column {column}", value) for value in values if value in text]
    return found


def _in_duckdb(path: Path, relative: str, values: list[str]) -> list[Finding]:
    found = []
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return []
    with con:
        columns = con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and not internal"
        ).fetchall()
        views = {
            (schema, view)
            for schema, view in con.execute(
                "select schema_name, view_name from duckdb_views() where database_name = current_database()"
            ).fetchall()
        }
        for schema, table, column in columns:
            if (schema, table) in views:
                continue
            for value in values:
                hit = con.execute(
                    f'select 1 from "{schema}"."{table}" where contains(cast("{column}" as varchar), ?) limit 1',
                    [value],
                ).fetchone()
                if hit:
                    found.append(Finding(relative, f"duckdb table {schema}.{table}.{column}", value))
    return found
