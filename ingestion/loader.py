"""Load landing files into raw.events, one transaction per file.

While one file loads, the next is read and validated in a thread (ingestion.stage.Prefetcher).

A file loads all-or-nothing: its good rows, its rejected rows and its manifest row commit together, so a
crash mid-file leaves nothing behind and the next run loads the file again from the start.

A file whose load raises (DuckDB out of memory, an I/O error, a bug) is rolled back and recorded with status
'failed' (0 rows in, the error as detail); the run goes on with the other files. Later runs try it again, up to
`max_file_attempts` runs in all, then record it 'quarantined': it is not tried again until its manifest row is
deleted. A later successful attempt replaces the 'failed' row, so each file keeps one row.

Rows of users on the suppression list (privacy.suppression: erased users, matched by user_id or anonymous_id) are
dropped from the stage before anything loads, rejected ones included, and counted as erased; the landing file is then
rewritten without their lines (privacy.landing) and the manifest records the rewritten file. With pseudonymisation
on (privacy.pseudonyms), ids and the named trait and context fields are replaced in the stage before loading.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb
import pyarrow as pa

from ingestion.discover import LandingFile, count_waiting, scan_landing, settled_files
from ingestion.markup import plain_text
from ingestion.readers import file_format
from ingestion.stage import STAGE, BatchCallback, Prefetcher, PreparedFile, load_time, prepare_file
from privacy.pseudonyms import pseudonymise
from privacy.suppression import Suppressor
from settings import IngestSettings
from stores.schema import connect, ensure

FAILED_STATUSES = ("failed", "quarantined")
MAX_DETAIL_CHARS = 2000

log = logging.getLogger(__name__)

# The ids already loaded are looked up first, hashing the file's ids and probing raw.events with them; a `not
# exists` against raw.events hashed all of raw.events' ids instead (0.4 s more per 250,000-row file at 10M rows).
# raw.events.message_id is `not null`, so `not in` is the anti-join it reads as.
_INSERT_EVENTS = """
insert into raw.events
with loaded_before as materialized (
    select message_id from raw.events
    where message_id in (select message_id from ingest_stage where reason is null)
)
select message_id, user_id, anonymous_id, type, event, timestamp, received_at, properties, traits, context,
       $source_file, line_number, $loaded_at
from ingest_stage
where reason is null
  and message_id not in (select message_id from loaded_before)
qualify row_number() over (partition by message_id order by line_number) = 1
"""

_INSERT_REJECTED = """
insert into raw.events_rejected
select $source_file, line_number, reason, raw_line, $loaded_at
from ingest_stage
where reason is not null
"""

_INSERT_MANIFEST = """
insert into raw.load_manifest by name (
    select $file_name as file_name, $checksum as checksum, $file_size as file_size, $file_mtime as file_mtime,
           $rows_in as rows_in, $rows_loaded as rows_loaded, $rows_duplicate as rows_duplicate,
           $rows_rejected as rows_rejected, $rows_erased as rows_erased, $status as status, $detail as detail,
           $loaded_at as loaded_at,
           $load_seconds as load_seconds, $batch_id as batch_id,
           -- rows that loaded wait for the batch gate; a file with nothing loaded has nothing to gate
           case when $rows_loaded > 0 then 'pending' else 'not_applicable' end as gate_status,
           $attempts as attempts
)
"""

# Known files are not read again: loaded ones by name, size and time; quarantined ones by name alone.
_SEEN = """
select 1 from raw.load_manifest
where file_name = $name
  and (status = 'quarantined' or (status <> 'failed' and file_size = $size and file_mtime = $mtime))
limit 1
"""


@dataclass(frozen=True)
class FileResult:
    """What happened to one landing file."""

    file_name: str
    status: str  # loaded | damaged | missing_columns | repeat | unsupported | failed | quarantined
    rows_in: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    detail: str | None = None
    seconds: float = 0.0
    attempts: int = 1
    # rows of suppressed (erased) users, dropped before loading; last, as callers build results by position
    rows_erased: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_loaded + self.rows_duplicate + self.rows_rejected + self.rows_erased


@dataclass
class IngestSummary:
    """Totals of one ingestion run over the landing folder; its files form one batch for the gate."""

    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    files: list[FileResult] = field(default_factory=list)
    files_waiting: int = 0
    seconds: float = 0.0
    # symlinks found in the landing folder: never followed, never loaded
    symlinks_skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        """Files whose load raised this run ('failed', to be tried again, or 'quarantined')."""
        return [result for result in self.files if result.status in FAILED_STATUSES]

    def total(self, attribute: str) -> int:
        return sum(getattr(result, attribute) for result in self.files)

    @property
    def rows_loaded(self) -> int:
        return self.total("rows_loaded")

    @property
    def rows_rejected(self) -> int:
        return self.total("rows_rejected")

    @property
    def rows_duplicate(self) -> int:
        return self.total("rows_duplicate")

    @property
    def rows_erased(self) -> int:
        return self.total("rows_erased")

    @property
    def rows_in(self) -> int:
        return self.total("rows_in")


def ingest_landing(
    settings: IngestSettings,
    *,
    on_batch: BatchCallback | None = None,
    on_file: Callable[[FileResult], None] | None = None,
) -> IngestSummary:
    """Load every settled, not yet loaded file of the landing folder; returns what each file gave."""
    started = time.perf_counter()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    summary = IngestSummary()
    scan = scan_landing(settings.landing_dir)
    summary.symlinks_skipped = scan.symlinks
    if scan.symlinks:
        shown = ", ".join(plain_text(name, 500) for name in scan.symlinks[:5]) + (
            " ..." if len(scan.symlinks) > 5 else ""
        )
        log.warning("%d symlink(s) in the landing folder, not followed and not loaded: %s", len(scan.symlinks), shown)
    suppressor = Suppressor(settings.privacy)
    con = _connect(settings)
    prefetch: Prefetcher | None = None
    try:
        ensure(con, "raw")
        settled = settled_files(settings.landing_dir, settings.settle_seconds, scan=scan)
        waiting = [landing_file for landing_file in settled if not _seen(con, landing_file)]
        prefetch = Prefetcher(waiting, settings, on_batch)
        prefetch.start(con)
        for prepared in prefetch:
            try:
                result = _process(con, prepared, settings, summary.batch_id, suppressor)
            except Exception as error:  # one file's failure must not stop the others
                recovered = _recovered(con, settings)
                if recovered is not con:
                    con = recovered
                    prefetch.restart(con)
                result = _record_failure(con, prepared.landing_file, settings, summary.batch_id, error)
            finally:
                prepared.close()
            if result is None:
                continue
            summary.files.append(result)
            (log.warning if result.status in FAILED_STATUSES else log.info)(
                "%s: %s, %d in = %d loaded + %d duplicate + %d rejected + %d erased (%.2fs)%s",
                plain_text(result.file_name, 500),  # one line in the log, whatever the name holds
                result.status,
                result.rows_in,
                result.rows_loaded,
                result.rows_duplicate,
                result.rows_rejected,
                result.rows_erased,
                result.seconds,
                f" - {plain_text(result.detail, 2000)}" if result.detail else "",
            )
            if on_file:
                on_file(result)
    finally:
        if prefetch is not None:
            prefetch.close()
        con.close()
    summary.files_waiting = count_waiting(settings.landing_dir, settings.settle_seconds)
    summary.seconds = time.perf_counter() - started
    return summary


def _connect(settings: IngestSettings) -> duckdb.DuckDBPyConnection:
    return connect(str(settings.warehouse_path), memory_limit=settings.memory_limit)


def _recovered(con: duckdb.DuckDBPyConnection, settings: IngestSettings) -> duckdb.DuckDBPyConnection:
    """The connection after a failed file, rolled back; a new one when DuckDB invalidated it."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()  # raises when no transaction is open
    try:
        con.execute("select 1").fetchall()
        return con
    except duckdb.Error:
        log.warning("the warehouse connection is unusable after a failed file; opening a new one")
        with contextlib.suppress(duckdb.Error):
            con.close()
        return _connect(settings)


def _record_failure(
    con: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    settings: IngestSettings,
    batch_id: str,
    error: Exception,
) -> FileResult:
    """Record a file whose load raised: 'failed' with 0 rows in, 'quarantined' once out of attempts."""
    log.exception("%s: the load failed and was rolled back", landing_file.name, exc_info=error)
    attempt = _attempts_before(con, landing_file.name) + 1
    limit = settings.max_file_attempts
    status = "quarantined" if attempt >= limit else "failed"
    detail = f"attempt {attempt} of {limit} failed: {type(error).__name__}: {error}"
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 3] + "..."
    if status == "quarantined":
        detail += "; quarantined: not tried again until its row in raw.load_manifest is deleted"
    else:
        detail += "; tried again on the next run"
    result = FileResult(landing_file.name, status, detail=detail, attempts=attempt)
    con.begin()
    try:
        # the checksum is unknown or untrusted here; failed rows take no part in the repeat check
        _insert_manifest(con, landing_file, "", batch_id, result, load_time())
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return result


def _seen(con: duckdb.DuckDBPyConnection, landing_file: LandingFile) -> bool:
    """Whether the file is known and not to be read again (loaded with this size and time, or quarantined)."""
    params = {"name": landing_file.name, "size": landing_file.size, "mtime": landing_file.mtime}
    return con.execute(_SEEN, params).fetchone() is not None


def _process(
    con: duckdb.DuckDBPyConnection,
    prepared: PreparedFile,
    settings: IngestSettings,
    batch_id: str,
    suppressor: Suppressor,
) -> FileResult | None:
    landing_file = prepared.landing_file
    if prepared.checksum is None:
        raise prepared.error or RuntimeError(f"{landing_file.name} was not read")
    checksum = prepared.checksum
    earlier = con.execute(
        "select file_name from raw.load_manifest where checksum = ? and status not in ('failed', 'quarantined') "
        "order by loaded_at limit 1",
        [checksum],
    ).fetchone()
    if earlier and earlier[0] == landing_file.name:
        # Same name and content, only the modification time moved (touched or copied back): nothing new. Record
        # the new size and time so that later runs know the file without reading it all again.
        con.execute(
            "update raw.load_manifest set file_size = ?, file_mtime = ? where file_name = ? and checksum = ? "
            "and status not in ('failed', 'quarantined')",
            [landing_file.size, landing_file.mtime, landing_file.name, checksum],
        )
        return None
    if earlier:
        return _record_only(
            con, landing_file, checksum, batch_id, "repeat", f"same content as {earlier[0]}, not loaded"
        )
    if file_format(landing_file.path) is None:
        return _record_only(
            con,
            landing_file,
            checksum,
            batch_id,
            "unsupported",
            "unsupported file type (expected .jsonl, .json, .csv, .parquet, optionally .gz)",
        )
    if prepared.error is not None:
        raise prepared.error
    if prepared.con is None:  # its content was known when it was prepared, and is no longer
        return ingest_file(con, landing_file, settings, batch_id, suppressor=suppressor)
    return load_prepared(prepared, settings, batch_id, suppressor=suppressor)


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    settings: IngestSettings,
    batch_id: str,
    on_batch: BatchCallback | None = None,
    *,
    suppressor: Suppressor | None = None,
) -> FileResult:
    """Read, validate and load one file (see `load_prepared`); raises when it cannot be read."""
    prepared = prepare_file(con, landing_file, settings, on_batch)
    try:
        if prepared.error is not None:
            raise prepared.error
        return load_prepared(prepared, settings, batch_id, suppressor=suppressor)
    finally:
        prepared.close()


def load_prepared(
    prepared: PreparedFile,
    settings: IngestSettings,
    batch_id: str,
    *,
    suppressor: Suppressor | None = None,
) -> FileResult:
    """Load one staged file in one transaction on its own connection: good rows to raw.events, bad rows to
    raw.events_rejected, rows of suppressed users nowhere (the file is rewritten without them)."""
    started = time.perf_counter()
    con, landing_file, checksum, loaded_at = prepared.con, prepared.landing_file, prepared.checksum, prepared.loaded_at
    if con is None or checksum is None:
        raise ValueError(f"{landing_file.name} was not staged")
    attempts = _attempts_before(con, landing_file.name) + 1
    con.begin()
    try:
        rows_in = con.execute(f"select count(*) from {STAGE}").fetchone()[0]
        erased, erased_lines = _erase_suppressed(con, suppressor or Suppressor(settings.privacy))
        # the file loses those lines before any row is recorded, so raw keeps the line numbers of the file as it is
        landing_file, checksum = _without_lines(con, landing_file, checksum, erased_lines)
        pseudonymise(con, STAGE, settings.privacy)
        valid, rejected = con.execute(
            f"select count(*) filter (where reason is null), count(*) filter (where reason is not null) from {STAGE}"
        ).fetchone()
        file_params = {"source_file": landing_file.name, "loaded_at": loaded_at}
        loaded = con.execute(_INSERT_EVENTS, file_params).fetchone()[0]
        con.execute(_INSERT_REJECTED, file_params)
        status, detail = _file_status(prepared)
        result = FileResult(
            landing_file.name,
            status,
            rows_in,
            loaded,
            valid - loaded,
            rejected,
            detail,
            prepared.seconds + time.perf_counter() - started,
            attempts,
            rows_erased=erased,
        )
        _insert_manifest(con, landing_file, checksum, batch_id, result, loaded_at)
        con.execute(f"drop table {STAGE}")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return result


def _erase_suppressed(con: duckdb.DuckDBPyConnection, suppressor: Suppressor) -> tuple[int, set[int]]:
    """Delete the stage rows whose user_id or anonymous_id is suppressed, rejected ones too; returns how many
    rows went and their line numbers. No work at all when the suppression list is empty."""
    if not suppressor.hashes:
        return 0, set()
    ids = con.execute(
        "select user_id from ingest_stage where user_id is not null "
        "union select anonymous_id from ingest_stage where anonymous_id is not null"
    ).fetchall()
    suppressed = suppressor.suppressed_values(row[0] for row in ids)
    if not suppressed:
        return 0, set()
    con.register("ingest_suppressed", pa.table({"id": pa.array(sorted(suppressed), pa.string())}))
    try:
        deleted = con.execute(
            "delete from ingest_stage where user_id in (select id from ingest_suppressed) "
            "or anonymous_id in (select id from ingest_suppressed) returning line_number"
        ).fetchall()
    finally:
        con.unregister("ingest_suppressed")
    return len(deleted), {row[0] for row in deleted}


def _without_lines(
    con: duckdb.DuckDBPyConnection, landing_file: LandingFile, checksum: str, line_numbers: set[int]
) -> tuple[LandingFile, str]:
    """The landing file rewritten without the erased lines, and its checksum (unchanged when there are none), so
    that the manifest knows the rewritten file and does not load it again; the staged rows are renumbered to the
    lines they have in the rewritten file."""
    if not line_numbers:
        return landing_file, checksum
    # imported here: privacy.landing reads landing files with the ingestion package's readers
    from privacy.landing import remove_lines

    rewritten = remove_lines(landing_file.path, line_numbers)
    con.register("ingest_removed_lines", pa.table({"line": pa.array(rewritten.lines_removed, pa.int64())}))
    try:
        con.execute(
            "update ingest_stage set line_number = line_number - "
            "(select count(*) from ingest_removed_lines where line < ingest_stage.line_number)"
        )
    finally:
        con.unregister("ingest_removed_lines")
    return replace(landing_file, size=rewritten.size, mtime=rewritten.mtime), rewritten.checksum


def _file_status(prepared: PreparedFile) -> tuple[str, str | None]:
    """The file's status and detail once read: damaged, missing columns, or loaded."""
    if prepared.damage:
        return "damaged", prepared.damage
    if prepared.missing_columns:
        return "missing_columns", "lacks required column(s): " + ", ".join(prepared.missing_columns)
    return "loaded", None


def _record_only(
    con: duckdb.DuckDBPyConnection, landing_file: LandingFile, checksum: str, batch_id: str, status: str, detail: str
) -> FileResult:
    result = FileResult(landing_file.name, status, detail=detail, attempts=_attempts_before(con, landing_file.name) + 1)
    con.begin()
    try:
        _insert_manifest(con, landing_file, checksum, batch_id, result, load_time())
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return result


def _attempts_before(con: duckdb.DuckDBPyConnection, file_name: str) -> int:
    """Failed attempts recorded for the file (its 'failed' row, replaced by the next attempt's row)."""
    return con.execute(
        "select coalesce(max(coalesce(attempts, 1)), 0) from raw.load_manifest "
        "where file_name = ? and status = 'failed'",
        [file_name],
    ).fetchone()[0]


def _insert_manifest(
    con: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    checksum: str,
    batch_id: str,
    result: FileResult,
    loaded_at: datetime,
) -> None:
    """The file's manifest row, in place of a 'failed' row of an earlier attempt (call inside a transaction)."""
    con.execute("delete from raw.load_manifest where file_name = ? and status = 'failed'", [landing_file.name])
    con.execute(
        _INSERT_MANIFEST,
        {
            "file_name": landing_file.name,
            "checksum": checksum,
            "file_size": landing_file.size,
            "file_mtime": landing_file.mtime,
            "rows_in": result.rows_in,
            "rows_loaded": result.rows_loaded,
            "rows_duplicate": result.rows_duplicate,
            "rows_rejected": result.rows_rejected,
            "rows_erased": result.rows_erased,
            "status": result.status,
            "detail": result.detail,
            "loaded_at": loaded_at,
            "load_seconds": result.seconds,
            "batch_id": batch_id,
            "attempts": result.attempts,
        },
    )
