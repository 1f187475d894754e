"""raw.* from the ingestion ledger (warehouse.duckdb) to the Parquet tables the Spark target reads.

raw.events goes one Parquet file per loaded landing file, named by a hash of (source_file, loaded_at, rows): a file
loaded since the last export is written, a file whose rows changed (erased users, expired data) is written again
under its new name and the old one removed, the rest are left alone. The other raw tables are small (a row per
file, batch or rejected line) and are written whole. Every file is written beside its final name and renamed, so a
reader sees the old file or the new one, never half of one.

Timestamps are written as UTC instants (TIMESTAMPTZ in DuckDB, Spark's TIMESTAMP) and JSON as text.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from spark_warehouse.layout import RAW_TABLES, external_table_dir

PART_PREFIX = "part-"
SCHEMA_PART = "part-schema.parquet"

# What Spark's tables hold: the ledger's columns, with the casts above.
_EVENTS_SELECT = """
select message_id, user_id, anonymous_id, type, event,
       timezone('UTC', timestamp) as timestamp, timezone('UTC', received_at) as received_at,
       properties::varchar as properties, traits::varchar as traits, context::varchar as context,
       source_file, source_line, timezone('UTC', loaded_at) as loaded_at
from raw.events
"""


@dataclass(frozen=True)
class ExportSummary:
    """What one export wrote and removed of raw.events (the other raw tables are written whole each time)."""

    files_written: int
    files_removed: int
    rows_written: int


def part_name(source_file: str, loaded_at: object, rows: int) -> str:
    """The Parquet file name of one landing file's rows: stable while its rows do not change."""
    digest = hashlib.sha256(f"{source_file}\x00{loaded_at}\x00{rows}".encode()).hexdigest()[:24]
    return f"{PART_PREFIX}{digest}.parquet"


def export_raw(con: duckdb.DuckDBPyConnection, data_dir: Path) -> ExportSummary:
    """Bring the Parquet copies of raw.* up to date with the ledger `con` is connected to."""
    con.execute("set TimeZone = 'UTC'")
    events_dir = external_table_dir(data_dir, "raw", "events")
    events_dir.mkdir(parents=True, exist_ok=True)
    wanted = {
        part_name(source_file, loaded_at, rows): (source_file, loaded_at)
        for source_file, loaded_at, rows in con.execute(
            "select source_file, loaded_at, count(*) from raw.events group by all"
        ).fetchall()
    }
    present = {path.name for path in events_dir.glob(f"{PART_PREFIX}*.parquet")} - {SCHEMA_PART}
    if not (events_dir / SCHEMA_PART).exists():
        # no rows: Spark reads the table's columns from it while no file is loaded (and ignores it after)
        write_parquet(con, _EVENTS_SELECT + " where false", {}, events_dir / SCHEMA_PART)
    written = rows = 0
    for name in sorted(wanted.keys() - present):
        source_file, loaded_at = wanted[name]
        query = _EVENTS_SELECT + " where source_file = $file and loaded_at = $loaded_at order by source_line"
        rows += write_parquet(con, query, {"file": source_file, "loaded_at": loaded_at}, events_dir / name)
        written += 1
    removed = present - wanted.keys()
    for name in removed:
        (events_dir / name).unlink()
    for table in RAW_TABLES:
        if table != "events":
            target = external_table_dir(data_dir, "raw", table)
            target.mkdir(parents=True, exist_ok=True)
            write_parquet(con, whole_table(con, table), {}, target / f"{PART_PREFIX}0.parquet")
    return ExportSummary(written, len(removed), rows)


def whole_table(con: duckdb.DuckDBPyConnection, table: str, schema: str = "raw") -> str:
    """A select of <schema>.<table> with its timestamps as UTC instants and JSON as text."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    outputs = []
    for name, data_type in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        if data_type == "TIMESTAMP":
            outputs.append(f"timezone('UTC', {quoted}) as {quoted}")
        elif data_type == "JSON":
            outputs.append(f"{quoted}::varchar as {quoted}")
        else:
            outputs.append(quoted)
    return f"select {', '.join(outputs)} from {schema}.{table}"


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, object], path: Path) -> int:
    """`query`'s rows to the Parquet file `path`, atomically; returns the row count."""
    partial = path.with_name(f".{path.name}.partial")
    count = con.execute(f"copy ({query}) to '{_sql_path(partial)}' (format parquet)", params).fetchone()
    os.replace(partial, path)
    return int(count[0]) if count else 0


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
