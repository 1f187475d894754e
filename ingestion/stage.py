"""A landing file's rows, read and validated, in a DuckDB temporary table: the stage a load inserts from.

`prepare_file` does all of a file's work that depends on its content alone (checksum, reading, validation) on its
own DuckDB connection; `Prefetcher` runs it for the next file in a thread while the current one loads, so reading
(Python), validating (DuckDB) and loading (DuckDB) overlap instead of taking turns on one core.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.discover import LandingFile, sha256_of
from ingestion.readers import FileReader, file_format
from ingestion.validate import VALIDATE_LINES_SQL, VALIDATE_TABLE_SQL, validate_params
from settings import IngestSettings

STAGE = "ingest_stage"

STAGE_DDL = f"""
create or replace temp table {STAGE} (
    line_number bigint, reason varchar, raw_line varchar, message_id varchar, user_id varchar,
    anonymous_id varchar, type varchar, event varchar, timestamp timestamp, received_at timestamp,
    properties json, traits json, context json
)
"""

# Rows of a batch a validation query scans as one task: a batch is split so that DuckDB's threads share it.
SCAN_CHUNK_ROWS = 16_384

BatchCallback = Callable[[str, int], None]


def stage_rows(
    con: duckdb.DuckDBPyConnection,
    reader: FileReader,
    params: dict[str, object],
    on_batch: BatchCallback | None = None,
    file_name: str = "",
) -> None:
    """Every row `reader` gives, validated, into the temp table ingest_stage (created or replaced)."""
    sql = "insert into " + STAGE + " " + (VALIDATE_LINES_SQL if reader.shape == "lines" else VALIDATE_TABLE_SQL)
    con.execute(STAGE_DDL)
    for batch in reader.batches():
        chunked = pa.Table.from_batches(batch.to_batches(max_chunksize=SCAN_CHUNK_ROWS), schema=batch.schema)
        con.register("batch", chunked)
        try:
            con.execute(sql, params)
        finally:
            con.unregister("batch")
        if on_batch:
            on_batch(file_name, batch.num_rows)


def reader_for(path: Path, settings: IngestSettings) -> FileReader:
    """The bounded reader of one landing file, with the settings' limits."""
    return FileReader(
        path,
        batch_rows=settings.batch_rows,
        max_line_bytes=settings.max_line_bytes,
        max_inflated_bytes=settings.max_inflated_bytes,
        max_row_group_bytes=settings.max_row_group_bytes,
        root=settings.landing_dir,
    )


def load_time() -> datetime:
    """Load time as naive UTC to the second, the warehouse's timestamp convention."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class PreparedFile:
    """One landing file after the work that depends on its content alone.

    `con` is the connection whose temp table ingest_stage holds the rows; None when the file was not read: an
    unsupported type, content already loaded (a touched file or a repeat), or an error, kept in `error` and raised
    by whoever loads the file. `seconds` is the time this work took (it overlaps the previous file's load).
    """

    landing_file: LandingFile
    checksum: str | None = None
    con: duckdb.DuckDBPyConnection | None = None
    loaded_at: datetime = field(default_factory=load_time)
    damage: str | None = None
    missing_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: BaseException | None = None

    def close(self) -> None:
        """Drop the stage with its connection."""
        if self.con is not None:
            self.con.close()
            self.con = None


def prepare_file(
    base: duckdb.DuckDBPyConnection,
    landing_file: LandingFile,
    settings: IngestSettings,
    on_batch: BatchCallback | None = None,
) -> PreparedFile:
    """Checksum, read and validate one file into the stage of a new connection from `base`; never raises.

    A file whose content is already loaded is not read (only its checksum is needed)."""
    started = time.perf_counter()
    prepared = PreparedFile(landing_file)
    try:
        prepared.checksum = sha256_of(landing_file.path, root=settings.landing_dir)
        known = base.execute(KNOWN_CONTENT, [prepared.checksum]).fetchone() is not None
        if file_format(landing_file.path) is not None and not known:
            prepared.con = base.cursor()
            reader = reader_for(landing_file.path, settings)
            params = validate_params(
                prepared.loaded_at,
                settings.future_tolerance_hours,
                settings.max_property_bytes,
                min_event_time=settings.min_event_time,
                max_raw_line_bytes=settings.max_raw_line_bytes,
            )
            stage_rows(prepared.con, reader, params, on_batch, landing_file.name)
            prepared.damage, prepared.missing_columns = reader.damage, reader.missing_columns
    except Exception as error:  # the file fails alone, when it is loaded
        prepared.close()
        prepared.error = error
    prepared.seconds = time.perf_counter() - started
    return prepared


# content already loaded (this file touched, or a repeat of another): the loader records it without its rows
KNOWN_CONTENT = "select 1 from raw.load_manifest where checksum = ? and status not in ('failed', 'quarantined') limit 1"

_DONE = object()


class Prefetcher:
    """Prepares `files` in order in a thread, one file ahead of the caller; iterate to get them in order.

    At most two files are prepared and not yet taken (one waiting, one being read). `restart` goes on from the
    next file with a new base connection (after the old one became unusable); `close` stops the thread and drops
    what it prepared.
    """

    def __init__(
        self, files: list[LandingFile], settings: IngestSettings, on_batch: BatchCallback | None = None
    ) -> None:
        self.files = files
        self.settings = settings
        self.on_batch = on_batch
        self.taken = 0
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._base: duckdb.DuckDBPyConnection | None = None

    def start(self, con: duckdb.DuckDBPyConnection) -> None:
        self._base = con.cursor()
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(
            target=self._run, args=(self._base, self.taken, self._queue, self._stop), daemon=True
        )
        self._thread.start()

    def restart(self, con: duckdb.DuckDBPyConnection) -> None:
        self.close()
        self.start(con)

    def __iter__(self) -> Iterator[PreparedFile]:
        while self.taken < len(self.files):
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            self.taken += 1
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread is not None and self._thread.is_alive():
            self._drain()
            self._thread.join(timeout=0.1)
        self._drain()
        if self._base is not None:
            self._base.close()
            self._base = None

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, PreparedFile):
                item.close()

    def _run(self, base: duckdb.DuckDBPyConnection, first: int, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for landing_file in self.files[first:]:
                if stop.is_set():
                    return
                prepared = prepare_file(base, landing_file, self.settings, self.on_batch)
                if not _put(out, prepared, stop):
                    prepared.close()
                    return
            _put(out, _DONE, stop)
        except BaseException as error:  # handed to the caller, raised there
            _put(out, error, stop)


def _put(out: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item` unless asked to stop first; returns whether it went in."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
