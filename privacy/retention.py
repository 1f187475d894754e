"""Expiry of old raw data: raw events, rejected rows and landing files older than RAW_RETENTION_DAYS.

What goes, with N = RAW_RETENTION_DAYS and cutoff = now - N days (nothing at all when N is 0):

- raw.events rows whose `loaded_at` AND event `timestamp` are both before the cutoff. The load time governs: dbt's
  stg_events stages rows by landing file whatever their event time, so a late event (dated last year, loaded
  yesterday) stays until its load is N days old, long after every refresh has staged it. The event time is a guard
  on top: an event dated after the cutoff (within the future tolerance of its load) stays too. Rows of files the
  batch gate holds in quarantine (gate_status 'quarantined') stay: they were never staged and may be released.
- raw.events_rejected rows rejected (loaded) before the cutoff.
- landing files (walked under DATA_DIR/landing without following symlinks; dot-files and files being written
  skipped) whose manifest row matches them by name, size and modification time, says they were read to the end
  (loaded, damaged, missing_columns, repeat) and was loaded before the cutoff, and whose modification time is before
  the cutoff too. Failed, quarantined and unsupported files, and files not loaded yet, stay. The manifest row stays,
  with status 'expired' and a detail saying when and what it was: ingestion skips a file with a row that is not
  'failed' of the same name, size and time, and one of the same name and content (whatever its time), so a file
  that reappears is never loaded again; a reappeared file is deleted again by the next expiry once it is old.

The dbt tables built from raw.events are not touched: marts keep their aggregates, and the incremental models
(staging.stg_events and the per-user ones: intermediate.int_users, int_sessions, int_user_daily_activity, ...) keep
every event they staged. Documented consequence: a `dbt build --full-refresh` after an expiry rebuilds them from
what raw.events still holds, so the history older than N days is lost from them and from the marts built on them.

Deletes commit in one transaction, then the files go and the warehouse is checkpointed (its file does not shrink:
DuckDB reuses the freed blocks).
"""

from __future__ import annotations

import contextlib
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from ingestion.discover import is_in_progress, scan_landing
from settings import Settings
from stores.schema import connect, ensure

# (stage, done, total): called as the work goes on
Progress = Callable[[str, int, int], None]

# manifest statuses of a file read to its end: its rows are in raw.events or raw.events_rejected
READ_STATUSES = ("loaded", "damaged", "missing_columns", "repeat")
EXPIRED = "expired"
STAGES = ("landing files", "raw.events", "raw.events_rejected", "files deleted", "checkpoint")

_QUARANTINED_FILES = "select file_name from raw.load_manifest where gate_status = 'quarantined'"

_DELETE_EVENTS = f"""
delete from raw.events
where loaded_at < $cutoff and timestamp < $cutoff and source_file not in ({_QUARANTINED_FILES})
"""

_DELETE_REJECTED = "delete from raw.events_rejected where rejected_at < $cutoff"

_EXPIRABLE_FILES = f"""
select distinct f.name, f.size, f.mtime
from expiry_landing as f
join raw.load_manifest as m on m.file_name = f.name and m.file_size = f.size and m.file_mtime = f.mtime
where m.status in ({", ".join(f"'{s}'" for s in (*READ_STATUSES, EXPIRED))})
  and m.loaded_at < $cutoff and f.mtime < $cutoff_epoch and coalesce(m.gate_status, '') <> 'quarantined'
order by f.name
"""

_MARK_EXPIRED = f"""
update raw.load_manifest
set status = '{EXPIRED}',
    detail = $note || status || coalesce('; ' || detail, '')
where file_name = $name and file_size = $size and file_mtime = $mtime
  and status in ({", ".join(f"'{s}'" for s in READ_STATUSES)})
"""


@dataclass
class ExpiryReport:
    """What one expiry did."""

    retention_days: int
    cutoff: datetime | None = None  # naive UTC; None when retention is off
    warehouse_found: bool = True
    events_deleted: int = 0
    rejected_deleted: int = 0
    manifest_rows_expired: int = 0
    files_deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    files_vanished: int = 0  # expirable files gone or changed before they could be deleted

    def figures(self) -> dict[str, int]:
        """The counts, by name (for logs and Dagster metadata)."""
        return {
            "retention_days": self.retention_days,
            "raw_events_deleted": self.events_deleted,
            "raw_events_rejected_deleted": self.rejected_deleted,
            "landing_files_deleted": len(self.files_deleted),
            "bytes_freed": self.bytes_freed,
            "manifest_rows_expired": self.manifest_rows_expired,
        }

    def summary(self) -> str:
        if self.retention_days <= 0:
            return "RAW_RETENTION_DAYS is 0: raw data is kept for ever, nothing expired."
        if not self.warehouse_found:
            return f"No warehouse yet: nothing to expire (retention {self.retention_days} days)."
        lines = [
            f"Expired raw data loaded before {self.cutoff} UTC (retention {self.retention_days} days):",
            f"  raw.events: {self.events_deleted} rows deleted",
            f"  raw.events_rejected: {self.rejected_deleted} rows deleted",
            f"  landing files: {len(self.files_deleted)} deleted, {self.bytes_freed} bytes freed "
            f"({self.manifest_rows_expired} manifest rows marked '{EXPIRED}')",
            "  marts and the incremental dbt tables keep their rows (a --full-refresh would lose that history)",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Candidate:
    name: str
    size: int
    mtime: float


def expire(settings: Settings, now: datetime | None = None, progress: Progress | None = None) -> ExpiryReport:
    """Delete raw rows and landing files older than `settings.privacy.retention_days` (see the module's doc);
    `now` defaults to the current time (a naive value means UTC)."""
    days = settings.privacy.retention_days
    report = ExpiryReport(days)
    if days <= 0:
        return report
    moment = _utc(now)
    report.cutoff = (moment - timedelta(days=days)).replace(tzinfo=None)
    warehouse = settings.ingest.warehouse_path
    if not warehouse.exists():
        report.warehouse_found = False
        return report
    step = _stepper(progress)
    con = connect(str(warehouse), memory_limit=settings.ingest.memory_limit)
    try:
        ensure(con, "raw.events", "raw.events_rejected", "raw.load_manifest")
        candidates = _expirable_files(con, settings.ingest.landing_dir, report.cutoff, moment)
        step("landing files")
        _delete_rows(con, report, candidates, step)
        _delete_files(settings.ingest.landing_dir, candidates, report)
        step("files deleted")
        con.execute("checkpoint")
        step("checkpoint")
    finally:
        con.close()
    return report


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _stepper(progress: Progress | None) -> Callable[[str], None]:
    done = iter(range(1, len(STAGES) + 1))

    def step(stage: str) -> None:
        if progress:
            progress(stage, next(done), len(STAGES))

    return step


def _expirable_files(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, cutoff: datetime, moment: datetime
) -> list[_Candidate]:
    """Landing files (not symlinks, not dot-files) whose manifest row lets them go."""
    now_epoch = moment.timestamp()
    rows = [
        (path.relative_to(landing_dir).as_posix(), info.st_size, info.st_mtime)
        for path, info in scan_landing(landing_dir).files
        if not is_in_progress(path, landing_dir, 0, now_epoch, info.st_mtime)
    ]
    con.execute("create or replace temp table expiry_landing (name varchar, size bigint, mtime double)")
    if rows:
        con.executemany("insert into expiry_landing values (?, ?, ?)", rows)
    params = {"cutoff": cutoff, "cutoff_epoch": cutoff.replace(tzinfo=UTC).timestamp()}
    found = [_Candidate(*row) for row in con.execute(_EXPIRABLE_FILES, params).fetchall()]
    con.execute("drop table expiry_landing")
    return found


def _delete_rows(
    con: duckdb.DuckDBPyConnection, report: ExpiryReport, candidates: list[_Candidate], step: Callable[[str], None]
) -> None:
    """The row deletes and the manifest marks, in one transaction."""
    assert report.cutoff is not None
    note = (
        f"landing file deleted by retention at {report.cutoff + timedelta(days=report.retention_days)} UTC "
        f"(RAW_RETENTION_DAYS={report.retention_days}); it was "
    )
    con.begin()
    try:
        report.events_deleted = con.execute(_DELETE_EVENTS, {"cutoff": report.cutoff}).fetchone()[0]
        step("raw.events")
        report.rejected_deleted = con.execute(_DELETE_REJECTED, {"cutoff": report.cutoff}).fetchone()[0]
        step("raw.events_rejected")
        for candidate in candidates:
            params = {"note": note, "name": candidate.name, "size": candidate.size, "mtime": candidate.mtime}
            report.manifest_rows_expired += con.execute(_MARK_EXPIRED, params).fetchone()[0]
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _delete_files(landing_dir: Path, candidates: list[_Candidate], report: ExpiryReport) -> None:
    """Delete each file still as the manifest knows it (a file replaced meanwhile stays)."""
    for candidate in candidates:
        path = landing_dir / candidate.name
        try:
            info = path.lstat()
        except FileNotFoundError:
            report.files_vanished += 1
            continue
        if not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime) != (candidate.size, candidate.mtime):
            report.files_vanished += 1
            continue
        path.unlink()
        report.files_deleted.append(candidate.name)
        report.bytes_freed += info.st_size


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A Progress callback drawing a tqdm bar on stderr (plain lines when tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the lock file

        def lines(stage: str, done: int, total: int) -> None:
            print(f"{description}: {stage} ({done}/{total})", file=sys.stderr, flush=True)

        yield lines
        return
    with tqdm(desc=description, unit="step", file=sys.stderr, leave=False) as bar:

        def update(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_postfix_str(stage, refresh=False)
            bar.update(done - bar.n)

        yield update


def expire_with_progress(settings: Settings) -> ExpiryReport:
    """`expire` with a progress bar, for `make expire`."""
    with progress_bar("expire") as progress:
        return expire(settings, progress=progress)
