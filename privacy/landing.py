"""Landing files rewritten without a subject's rows: JSON lines, CSV and Parquet, gzipped or not.

A row is numbered as ingestion numbers it (`raw.events.source_line`): the physical line of a JSON-lines file, the
last physical line of a CSV record, the 1-based row of a Parquet file. `subject_rows` finds a subject's rows with
ingestion's own reader and validation query, so an id is read exactly as ingestion reads it (camelCase or
snake_case, trimmed); a row whose ids cannot be read (broken JSON) is the subject's when its text holds one of the
ids as a JSON string. `remove_rows` writes the file again without them: to a hidden temporary file in the same
folder (ingestion skips dot-files), fsynced, then renamed over the original, so a reader sees the old file or the
new one, never a mix.
"""

from __future__ import annotations

import bisect
import gzip
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.discover import sha256_of
from ingestion.readers import FileReader, file_format
from ingestion.stage import reader_for, stage_rows
from ingestion.streams import file_blocks
from ingestion.validate import validate_params
from privacy.identities import Subject
from settings import IngestSettings
from stores.files import fsync_dir

READ_BLOCK_BYTES = 4 << 20
MAX_INFLATED_BYTES = 64 << 30  # a gzip file inflating beyond this is not rewritten (the erasure reports it)


@dataclass(frozen=True)
class RewriteResult:
    """The rewritten file: what the manifest must record so that it is known and not loaded again."""

    size: int
    mtime: float
    checksum: str
    rows_removed: int
    lines_removed: tuple[int, ...]  # physical lines (rows for Parquet) taken out, ascending

    def renumber(self, number: int) -> int:
        """The number a row kept from the old file has in the new one."""
        return number - bisect.bisect_left(self.lines_removed, number)


@dataclass
class SubjectRows:
    """A subject's rows in one file, and the ids found on them (the clear ids, as the file has them)."""

    rows: set[int] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    all_rows: list[int] = field(default_factory=list)  # every row the reader gave, for CSV record spans


def subject_rows(
    path: Path,
    subject: Subject,
    settings: IngestSettings,
    id_of: Callable[[str], str] | None = None,
) -> SubjectRows:
    """The rows of `path` that belong to `subject` (see privacy.identities); `id_of` maps a clear id as read from
    the file onto the form the subject holds (the pseudonym when ingestion pseudonymises)."""
    reader = reader_for(path, settings)
    params = validate_params(
        datetime.now(UTC).replace(tzinfo=None),
        settings.future_tolerance_hours,
        settings.max_property_bytes,
        min_event_time=settings.min_event_time,
        max_raw_line_bytes=settings.max_line_bytes,
    )
    found = SubjectRows()
    with duckdb.connect() as con:
        stage_rows(con, reader, params)
        found.all_rows = [n for (n,) in con.execute("select line_number from ingest_stage order by 1").fetchall()]
        # the ids as the file has them, mapped once each: the rows are then matched in SQL, not one by one
        present = con.execute(
            "select user_id as id, true as is_user from ingest_stage where user_id is not null group by 1 "
            "union all select anonymous_id, false from ingest_stage where anonymous_id is not null group by 1"
        ).fetchall()
        users, anonymous = [], []
        for value, is_user in present:
            mapped = id_of(value) if id_of else value
            if is_user and mapped in subject.user_ids:
                users.append(value)
            elif not is_user and mapped in subject.anonymous_ids:
                anonymous.append(value)
        con.register("subject_users", pa.table({"id": pa.array(users, pa.string())}))
        con.register("subject_anonymous", pa.table({"id": pa.array(anonymous, pa.string())}))
        matched = con.execute(
            """
            select line_number, case when user_id is null or anonymous_id in (select id from subject_anonymous)
                                     then anonymous_id end
            from ingest_stage
            where user_id in (select id from subject_users)
               or (user_id is null and anonymous_id in (select id from subject_anonymous))
            """
        ).fetchall()
        # rows whose ids could not be read (rejected): the subject's when their text names one of its ids
        unreadable = con.execute(
            "select line_number, raw_line from ingest_stage "
            "where user_id is null and anonymous_id is null and raw_line is not null"
        ).fetchall()
    for line_number, anonymous_id in matched:
        found.rows.add(line_number)
        if anonymous_id:
            found.anonymous_ids.add(anonymous_id)
    quoted = [f'"{value}"' for value in sorted(subject.all_ids)]
    found.rows |= {line_number for line_number, raw_line in unreadable if any(text in raw_line for text in quoted)}
    return found


def remove_rows(path: Path, rows: Iterable[int], all_rows: list[int] | None = None) -> RewriteResult:
    """Rewrite `path` without the rows numbered `rows` (ingestion's numbering); for a CSV file `all_rows` (every
    row number its reader gives) tells where each record starts, and is read from the file when not given."""
    remove = set(rows)
    fmt = file_format(path)
    if fmt is None:
        raise ValueError(f"{path.name}: not a landing file format")
    temporary = path.with_name(f".{path.name}.erase-{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            removed = _rewrite_parquet(path, temporary, remove)
            lines = tuple(sorted(remove))
        else:
            physical = remove if fmt == "jsonl" else _csv_lines(path, remove, all_rows)
            _rewrite_lines(path, temporary, physical, compressed=path.name.lower().endswith(".gz"))
            lines = tuple(sorted(physical))
            removed = len(remove & set(all_rows)) if fmt == "csv" and all_rows is not None else len(remove)
        stat = temporary.stat()
        checksum = sha256_of(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return RewriteResult(stat.st_size, stat.st_mtime, checksum, removed, lines)


def remove_lines(path: Path, line_numbers: Iterable[int]) -> RewriteResult:
    """`remove_rows` for callers that hold only the row numbers (ingestion, for suppressed rows)."""
    return remove_rows(path, line_numbers)


def _physical_lines(path: Path) -> Iterator[bytes]:
    """The file's (inflated) lines with their line ends; the last may have none."""
    rest = b""
    for block in file_blocks(path, READ_BLOCK_BYTES, max_inflated_bytes=MAX_INFLATED_BYTES):
        data = rest + block
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            yield data[start : end + 1]
            start = end + 1
        rest = data[start:]
    if rest:
        yield rest


def _rewrite_lines(path: Path, temporary: Path, remove: set[int], *, compressed: bool) -> int:
    removed = 0
    with (
        open(temporary, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if compressed else raw as out,
    ):
        for number, line in enumerate(_physical_lines(path), start=1):
            if number in remove:
                removed += 1
            else:
                out.write(line)
    _fsync(temporary)
    return removed


def _csv_lines(path: Path, records: set[int], all_rows: list[int] | None) -> set[int]:
    """The physical lines of the CSV records ending on `records`: a record starts after the previous one ends
    (blank lines before it go with it); the header is one line."""
    if not records:
        return set()
    if all_rows is None:
        all_rows = sorted(row for batch in FileReader(path).batches() for row in batch["line_number"].to_pylist())
    lines: set[int] = set()
    previous_end = 1
    for end in all_rows:
        if end in records:
            lines.update(range(previous_end + 1, end + 1))
        previous_end = end
    return lines


def _rewrite_parquet(path: Path, temporary: Path, remove: set[int]) -> int:
    parquet = pq.ParquetFile(path)
    kept = 0
    writer: pq.ParquetWriter | None = None
    first = 1
    try:
        writer = pq.ParquetWriter(temporary, parquet.schema_arrow)
        for batch in parquet.iter_batches(batch_size=100_000):
            numbers = range(first, first + batch.num_rows)
            mask = pa.array([number not in remove for number in numbers])
            first += batch.num_rows
            filtered = batch.filter(mask)
            kept += filtered.num_rows
            writer.write_batch(filtered)
    finally:
        if writer is not None:
            writer.close()
    _fsync(temporary)
    return parquet.metadata.num_rows - kept


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
