"""A subject's rows deleted from warehouse.duckdb, landing files kept true to raw.load_manifest, and the file
rewritten so that deleted rows do not linger in its free blocks.

Landing files: each rewritten file's manifest row keeps `rows_in` and moves the removed rows from loaded, duplicate
or rejected to `rows_erased` (rows_in = loaded + duplicate + rejected + erased), and takes the new size, time and
checksum, so the file is known and not loaded again; the rows kept in raw.events and raw.events_rejected are
renumbered to their lines in the new file.

Tables: every table of the store registry that holds personal data loses the subject's rows: raw.events by the
subject's events (privacy.identities), raw.events_rejected by the rewritten lines and by raw text naming an id, and
every other table by its user columns: `user_id` (for the per-user dbt models, the stitched user) and
`known_user_id` in the subject's ids. Incremental models lose the rows in place: each of their rows belongs to one
user, so that is what recomputing the user would give; the aggregate tables are rebuilt by dbt afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.discover import settled_files
from ingestion.readers import file_format
from privacy.identities import Subject, event_filter, register
from privacy.landing import RewriteResult, remove_rows, subject_rows
from settings import IngestSettings
from stores.files import fsync_dir
from stores.registry import TableStore
from stores.schema import connect

LOCK_WAIT_SECONDS = 300.0
RAW_TABLES = ("raw.events", "raw.events_rejected")
# the columns a row's owner is read from (other user columns, such as anonymous_id or previous_user_id, may name
# another user's device or former id: those rows stay with their owner)
OWNER_COLUMNS = ("user_id", "known_user_id")

Progress = Callable[[str], None]


def connect_writer(path: Path, wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """The warehouse opened for writing, waiting while another process holds it (DuckDB has one writer)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return connect(str(path))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


@dataclass
class LandingOutcome:
    """What the landing step did."""

    files_scanned: int = 0
    files_rewritten: list[str] = field(default_factory=list)
    rows_removed: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # file: why it could not be rewritten
    clear_anonymous_ids: set[str] = field(default_factory=set)


def candidate_files(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, subject: Subject, settle_seconds: float
) -> list[Path]:
    """Settled landing files that may hold the subject's rows: those that gave raw.events rows of the subject, those
    with duplicate or rejected rows (the subject's may be among them), and those not loaded (pending, failed,
    damaged). A file still being written is left to ingestion, which drops the suppressed rows when it loads it."""
    register(con, subject)
    with_rows = {
        name
        for (name,) in con.execute(f"select distinct source_file from raw.events where {event_filter()}").fetchall()
    }
    clean = {
        name
        for (name,) in con.execute(
            "select file_name from raw.load_manifest where status = 'loaded' and rows_duplicate = 0 "
            "and rows_rejected = 0"
        ).fetchall()
    }
    files = []
    for landing_file in settled_files(landing_dir, settle_seconds):
        if file_format(landing_file.path) is None:
            continue
        if landing_file.name in with_rows or landing_file.name not in clean:
            files.append(landing_file.path)
    return files


def erase_landing(
    con: duckdb.DuckDBPyConnection,
    settings: IngestSettings,
    subject: Subject,
    id_of: Callable[[str], str] | None,
    progress: Progress,
) -> LandingOutcome:
    """Rewrite every landing file holding the subject's rows, and keep its manifest row and raw rows true."""
    outcome = LandingOutcome()
    files = candidate_files(con, settings.landing_dir, subject, settings.settle_seconds)
    for path in files:
        name = path.relative_to(settings.landing_dir).as_posix()
        progress(f"landing: {name}")
        outcome.files_scanned += 1
        try:
            found = subject_rows(path, subject, settings, id_of)
            if not found.rows:
                continue
            rewrite = remove_rows(path, found.rows, found.all_rows)
        except Exception as error:  # a damaged or vanished file: reported, the rest go on
            outcome.failed[name] = f"{type(error).__name__}: {error}"
            continue
        outcome.clear_anonymous_ids |= found.anonymous_ids
        outcome.files_rewritten.append(name)
        outcome.rows_removed += rewrite.rows_removed
        _record_rewrite(con, name, sorted(found.rows), rewrite)
    return outcome


def _record_rewrite(con: duckdb.DuckDBPyConnection, name: str, rows: list[int], rewrite: RewriteResult) -> None:
    """In one transaction: the file's removed rows out of raw.*, its manifest row moved to the new file, and the
    rows kept renumbered to their new lines."""
    con.begin()
    try:
        con.register("erase_rows", pa.table({"n": pa.array(rows, pa.int64())}))
        # each removed line with how many lines were removed up to it: a kept line's shift, found by an as-of join
        con.register("erase_lines_given", pa.table({"n": pa.array(rewrite.lines_removed, pa.int64())}))
        con.execute(
            "create or replace temp table erase_lines as "
            "select n, row_number() over (order by n) as removed_up_to from erase_lines_given"
        )
        loaded = con.execute(
            "delete from raw.events where source_file = ? and source_line in (select n from erase_rows)", [name]
        ).fetchone()[0]
        rejected = con.execute(
            "delete from raw.events_rejected where source_file = ? and line_number in (select n from erase_rows)",
            [name],
        ).fetchone()[0]
        con.execute(
            """
            update raw.load_manifest set
                rows_loaded = rows_loaded - $loaded,
                rows_rejected = rows_rejected - $rejected,
                rows_duplicate = greatest(rows_duplicate - ($removed - $loaded - $rejected), 0),
                rows_erased = coalesce(rows_erased, 0) + $removed,
                file_size = $size, file_mtime = $mtime, checksum = $checksum
            where file_name = $name and status not in ('failed', 'quarantined')
            """,
            {
                "loaded": loaded,
                "rejected": rejected,
                "removed": rewrite.rows_removed,
                "size": rewrite.size,
                "mtime": rewrite.mtime,
                "checksum": rewrite.checksum,
                "name": name,
            },
        )
        for table, column in (("raw.events", "source_line"), ("raw.events_rejected", "line_number")):
            con.execute(
                f"""
                update {table} as t set {column} = t.{column} - shifted.removed_up_to
                from (
                    select kept.line, removed.removed_up_to
                    from (select distinct {column} as line from {table} where source_file = $name) as kept
                    asof join erase_lines as removed on kept.line > removed.n
                ) as shifted
                where t.source_file = $name and t.{column} = shifted.line
                """,
                {"name": name},
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        for view in ("erase_rows", "erase_lines_given"):
            con.unregister(view)


def delete_raw(con: duckdb.DuckDBPyConnection, subject: Subject) -> dict[str, int]:
    """The subject's rows left in raw.* (from files no longer in the landing folder, or written by another path)."""
    register(con, subject)
    events = con.execute(f"delete from raw.events where {event_filter()}").fetchone()[0]
    con.execute("create or replace temp table erase_texts (text varchar)")
    con.executemany("insert into erase_texts values (?)", [[f'"{value}"'] for value in sorted(subject.all_ids)])
    con.executemany("insert into erase_texts values (?)", [[f",{value},"] for value in sorted(subject.all_ids)])
    rejected = con.execute(
        "delete from raw.events_rejected where exists ("
        "select 1 from erase_texts where contains(',' || raw_line || ',', erase_texts.text))"
    ).fetchone()[0]
    return {"raw.events": events, "raw.events_rejected": rejected}


def delete_user_rows(
    con: duckdb.DuckDBPyConnection, subject: Subject, stores: Iterable[TableStore], progress: Progress
) -> dict[str, int]:
    """The subject's rows out of every personal warehouse table of the registry (raw.* aside)."""
    # tables only: with DBT_TARGET=spark the dbt models are views over Spark's files, erased there
    present = {
        name
        for (name,) in con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    ids = sorted(subject.all_ids)
    con.execute("create or replace temp table erase_ids (id varchar)")
    con.executemany("insert into erase_ids values (?)", [[value] for value in ids])
    removed: dict[str, int] = {}
    for store in stores:
        if store.database != "warehouse" or store.kind != "table" or store.table in RAW_TABLES:
            continue
        if not store.holds_personal_data or store.table not in present:
            continue
        columns = _owner_columns(con, store.table)
        if not columns:
            continue
        progress(f"table: {store.table}")
        predicate = " or ".join(f"{column} in (select id from erase_ids)" for column in columns)
        removed[store.table] = con.execute(f"delete from {store.table} where {predicate}").fetchone()[0]
    return removed


def _owner_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    columns = {
        column
        for (column,) in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }
    owners = [column for column in OWNER_COLUMNS if column in columns]
    if not owners and "anonymous_id" in columns:
        owners = ["anonymous_id"]
    return owners


def rewrite_database(path: Path) -> tuple[int, int]:
    """Copy the database into a new file and rename it over the old one, so that no freed block keeps deleted rows
    (a CHECKPOINT alone reuses blocks but does not clear them). Returns the sizes before and after, in bytes."""
    before = path.stat().st_size
    fresh = path.with_name(f".{path.name}.rewrite-{os.getpid()}.tmp")
    fresh.unlink(missing_ok=True)
    Path(str(fresh) + ".wal").unlink(missing_ok=True)
    try:
        with duckdb.connect(str(path)) as con:
            con.execute("checkpoint")
            con.execute("attach '" + str(fresh).replace("'", "''") + "' as fresh")
            con.execute("copy from database " + _current(con) + " to fresh")
            con.execute("detach fresh")
        os.replace(fresh, path)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
    with contextlib.suppress(FileNotFoundError):
        Path(str(path) + ".wal").unlink()
    fsync_dir(path.parent)
    return before, path.stat().st_size


def _current(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select current_database()").fetchone()[0]
