"""Publish marts.* and ml.* from the pipeline's warehouse to $DATA_DIR/serving.duckdb and Parquet exports.

The serving copy also gets schema ops (the load manifest, the batch gate's verdicts and rejected rows per file and
reason, for the dashboard's data-health page; not exported) and meta.publish (when, from what, and the as_of the
marts were computed at).

The copy is written to a hidden temporary file and renamed over the old one. An analyst's open read-only
connection keeps reading the old file (the rename swaps the name, not the bytes the connection holds), so it
never blocks a run and never sees half a refresh; the next connection sees the new copy whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("marts", "ml")
SAMPLE_LINE_CHARS = 500

# Schema `ops`: what the dashboard's data-health page needs from the pipeline's raw.* bookkeeping, which is not
# published as such (raw.events is large and only the pipeline reads it). Each entry: table, raw tables it reads,
# and the select that builds it.
OPS_TABLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("load_manifest", ("load_manifest",), "select * from raw.load_manifest"),
    ("batches", ("batches",), "select * from raw.batches"),
    (
        "rejects_by_file_reason",
        ("events_rejected",),
        "select source_file, reason, count(*) as rejected_rows, min(line_number) as first_line_number, "
        f"arg_min(left(raw_line, {SAMPLE_LINE_CHARS}), coalesce(line_number, 0)) as sample_line, "
        "max(rejected_at) as last_rejected_at "
        "from raw.events_rejected group by source_file, reason",
    ),
)


@dataclass(frozen=True)
class PublishResult:
    """What one publish wrote."""

    serving_path: Path
    exports_dir: Path
    tables: dict[str, int]  # schema.table -> rows
    published_at: datetime
    latest_event_at: datetime | None
    latest_load_at: datetime | None

    @property
    def seconds_since_latest_load(self) -> float | None:
        """Lag from the newest landing file's load to this publish."""
        return None if self.latest_load_at is None else (self.published_at - self.latest_load_at).total_seconds()

    @property
    def seconds_since_latest_event(self) -> float | None:
        """Lag from the newest event's own timestamp to this publish."""
        return None if self.latest_event_at is None else (self.published_at - self.latest_event_at).total_seconds()


def publish(con: duckdb.DuckDBPyConnection, serving_path: Path, exports_dir: Path) -> PublishResult:
    """Copy every table of the published schemas into a new serving file and Parquet files, then swap both in."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staged_db = serving_path.with_name(f".{serving_path.name}.{token}.tmp")
    staged_exports = exports_dir.with_name(f".{exports_dir.name}.{token}.tmp")
    tables = _tables(con)
    published_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    latest_event_at, latest_load_at = _freshness(con)
    as_of = _as_of(con) or latest_event_at
    try:
        con.execute("attach ? as serving_copy", [str(staged_db)])
        counts: dict[str, int] = {}
        for schema, table in tables:
            # catalog names from duckdb_tables(), quoted as identifiers: no data values in this SQL
            source = f'"{schema}"."{table}"'
            con.execute(f'create schema if not exists serving_copy."{schema}"')
            con.execute(f'create table serving_copy."{schema}"."{table}" as select * from {source}')
            (staged_exports / schema).mkdir(parents=True, exist_ok=True)
            con.execute(f"copy {source} to '{staged_exports / schema / (table + '.parquet')}' (format parquet)")
            counts[f"{schema}.{table}"] = con.execute(f"select count(*) from {source}").fetchone()[0]
        present = _raw_tables(con)
        for table, needs, select in OPS_TABLES:
            if not set(needs) <= present:
                continue
            con.execute("create schema if not exists serving_copy.ops")
            con.execute(f"create table serving_copy.ops.{table} as {select}")
            counts[f"ops.{table}"] = con.execute(f"select count(*) from serving_copy.ops.{table}").fetchone()[0]
        con.execute("create schema serving_copy.meta")
        con.execute(
            "create table serving_copy.meta.publish as select ?::timestamp as published_at, "
            "?::timestamp as latest_event_at, ?::timestamp as latest_load_at, ? as tables, ?::timestamp as as_of",
            [published_at, latest_event_at, latest_load_at, len(counts), as_of],
        )
        con.execute("detach serving_copy")
        os.replace(staged_db, serving_path)
        _swap_directory(staged_exports, exports_dir)
    finally:
        if any(
            row[0] == "serving_copy" for row in con.execute("select database_name from duckdb_databases()").fetchall()
        ):
            con.execute("detach serving_copy")
        staged_db.unlink(missing_ok=True)
        shutil.rmtree(staged_exports, ignore_errors=True)
    return PublishResult(serving_path, exports_dir, counts, published_at, latest_event_at, latest_load_at)


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database() and schema_name in (select unnest(?)) order by 1, 2",
        [list(PUBLISHED_SCHEMAS)],
    ).fetchall()


def _raw_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() and schema_name = 'raw'"
        ).fetchall()
    }


def _as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The instant the marts were computed at (intermediate.int_as_of), when dbt has built it."""
    has_as_of = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'intermediate' and table_name = 'int_as_of'"
    ).fetchone()[0]
    if not has_as_of:
        return None
    row = con.execute("select max(as_of) from intermediate.int_as_of").fetchone()
    return row[0] if row else None


def _freshness(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    has_raw = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'events'"
    ).fetchone()[0]
    if not has_raw:
        return None, None
    return con.execute("select max(timestamp), max(loaded_at) from raw.events").fetchone()


def _swap_directory(staged: Path, target: Path) -> None:
    """Put a fully written directory in place of another (two renames; the old one is removed after)."""
    retired = target.with_name(f".{target.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(staged, target)
    shutil.rmtree(retired, ignore_errors=True)
