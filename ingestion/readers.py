"""Stream landing files as Arrow batches, one row per input line or record, never a whole file at once.

Two shapes come out of a reader:
- line files (JSONL/JSON): `line_number`, `raw_line`, `pre_reason`; fields are extracted from the JSON in SQL;
- table files (CSV/Parquet): `line_number`, `pre_reason` and the canonical fields as strings.
`pre_reason` carries what is wrong before any field is looked at (bad encoding, NUL byte, missing column,
the damaged tail of a truncated file). A damaged file ends with one row holding the reason and what was left.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from event_contract import CAMEL_CASE, FIELDS, ID_FIELDS, OBJECT_FIELDS, REQUIRED_FIELDS
from ingestion.streams import DamagedFile, LineSplitter, LongLine, TooLarge, file_blocks, open_landing

# Column names as the readers receive them, lower-cased without underscores, for Segment's camelCase exports.
CAMEL_ALIASES = {camel.lower(): snake for snake, camel in CAMEL_CASE.items()}

LINE_SUFFIXES = (".jsonl", ".ndjson", ".json")
# What a corrupt Parquet file raises from pyarrow; opening errors are raised before these are caught.
DAMAGE_ERRORS = (DamagedFile, EOFError, OSError, pa.ArrowInvalid)
# What an over-long line or record keeps as raw text.
LONG_LINE_HEAD_BYTES = 1000
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")

LINE_SCHEMA = pa.schema([("line_number", pa.int64()), ("raw_line", pa.string()), ("pre_reason", pa.string())])
TABLE_SCHEMA = pa.schema(
    [("line_number", pa.int64()), ("raw_line", pa.string()), ("pre_reason", pa.string())]
    + [(name, pa.string()) for name in FIELDS]
)


# Segment's S3 destination names its gzipped JSON-lines objects `<epoch milliseconds>.<hash>.gz`
SEGMENT_OBJECT = re.compile(r"[0-9]{10,}\.[0-9a-z]{1,64}")


def file_format(path: Path) -> str | None:
    """'jsonl', 'csv' or 'parquet' from the file name (a trailing .gz allowed), None when unsupported."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if SEGMENT_OBJECT.fullmatch(name):
            return "jsonl"
    if name.endswith(LINE_SUFFIXES):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet") and not path.name.lower().endswith(".gz"):
        return "parquet"
    return None


def canonical_name(column: str) -> str:
    """Map a column or field name in either naming style onto the contract's snake_case name."""
    lowered = column.strip().lower()
    return CAMEL_ALIASES.get(lowered.replace("_", ""), lowered)


@dataclass
class FileReader:
    """Iterates one file's batches; `damage` and `missing_columns` are known once iteration ends.

    `root` is the landing folder: no symlink below it is followed when the file is opened.
    """

    path: Path
    batch_rows: int = 100_000
    fmt: str = ""
    max_line_bytes: int = 4 << 20
    max_inflated_bytes: int | None = 4 << 30
    max_row_group_bytes: int = 512 << 20
    root: Path | None = None
    damage: str | None = None
    missing_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fmt = self.fmt or file_format(self.path) or ""

    @property
    def shape(self) -> str:
        return "lines" if self.fmt == "jsonl" else "table"

    def batches(self) -> Iterator[pa.Table]:
        if self.fmt == "jsonl":
            yield from self._line_batches()
        elif self.fmt == "csv":
            yield from self._csv_batches()
        elif self.fmt == "parquet":
            yield from self._parquet_batches()
        else:
            raise ValueError(f"{self.path.name}: unsupported file type")

    # -- damage -------------------------------------------------------------------------------------------

    def _damaged_tail(self, error: BaseException, after_line: int, leftover: str) -> pa.Table:
        cut = "file not read past line" if isinstance(error, TooLarge) else "file damaged after line"
        self.damage = f"{cut} {after_line}: {error}"
        return self._one_row(after_line + 1, leftover, self.damage)

    def _one_row(self, line_number: int, raw_line: str, reason: str) -> pa.Table:
        schema = LINE_SCHEMA if self.shape == "lines" else TABLE_SCHEMA
        row: dict[str, list] = {name: [None] for name in schema.names}
        row.update(line_number=[line_number], raw_line=[raw_line], pre_reason=[reason])
        return pa.table(row, schema=schema)

    @property
    def long_line_reason(self) -> str:
        return f"line of more than {self.max_line_bytes} bytes is over max_line_bytes ({self.max_line_bytes})"

    def _blocks(self, block_bytes: int = 16 << 20) -> Iterator[bytes]:
        return file_blocks(self.path, block_bytes, max_inflated_bytes=self.max_inflated_bytes, root=self.root)

    # -- JSON lines ---------------------------------------------------------------------------------------

    def _line_batches(self) -> Iterator[pa.Table]:
        next_line = 1
        splitter = LineSplitter(self.max_line_bytes, LONG_LINE_HEAD_BYTES)
        try:
            for item in splitter.split(self._blocks()):
                if isinstance(item, LongLine):
                    yield self._one_row(next_line, _text(item.head), self.long_line_reason)
                    next_line += 1
                    continue
                table, line_count = _lines_table(item, next_line)
                next_line += line_count
                yield from _slices(table, self.batch_rows)
        except DamagedFile as error:
            # Whatever follows the last newline before the damage is a fragment: the damaged tail.
            yield self._damaged_tail(error, next_line - 1, _text(splitter.fragment))

    # -- CSV ----------------------------------------------------------------------------------------------

    def _csv_batches(self) -> Iterator[pa.Table]:
        # Records are bounded by max_line_bytes before the csv module sees them, so no field can be longer.
        if csv.field_size_limit() < self.max_line_bytes:
            csv.field_size_limit(self.max_line_bytes)
        splitter = LineSplitter(self.max_line_bytes, LONG_LINE_HEAD_BYTES)
        lines = _CsvLines(splitter.split(self._blocks(1 << 20)), self.max_line_bytes)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except RecordTooLong as error:
            yield self._damaged_tail(DamagedFile(f"header {self.long_line_reason}"), 0, _text(error.head))
            return
        except csv.Error as error:
            yield self._damaged_tail(DamagedFile(f"malformed CSV header: {error}"), 0, "")
            return
        except DamagedFile as error:
            yield self._damaged_tail(error, 0, "")
            return
        if header is None:
            return
        columns = [canonical_name(name) for name in header]
        self._check_columns(columns)
        if not self.missing_columns:
            finished = yield from self._simple_csv_runs(lines, columns)
            if finished:
                return
        yield from self._csv_records(lines, csv.reader(lines), columns)

    def _simple_csv_runs(self, lines: _CsvLines, columns: list[str]) -> Iterator[pa.Table]:
        """Tables of the runs of lines in which every record is one line, parsed a run at a time; stops at the first
        run that is not (left in `lines` for `_csv_records`). Returns True when the file has been read to its end."""
        if lines.splitting:
            return False
        tables: list[pa.Table] = []
        rows = 0
        item = lines.take_rest()
        while True:
            try:
                item = item if item is not None else next(lines.items)
            except StopIteration:
                yield from _slices(_concat(tables), self.batch_rows)
                return True
            except DamagedFile as error:
                yield from _slices(_concat(tables), self.batch_rows)
                yield self._damaged_tail(error, lines.line, "")
                return True
            table = _simple_csv_run(item, lines.line, columns) if isinstance(item, bytes) else None
            if table is None:
                lines.push_back(item)
                yield from _slices(_concat(tables), self.batch_rows)
                return False
            lines.line += item.count(b"\n")
            tables.append(table)
            rows += table.num_rows
            if rows >= self.batch_rows:
                yield _concat(tables)
                tables, rows = [], 0
            item = None

    def _csv_records(self, lines: _CsvLines, reader: Iterator[list[str]], columns: list[str]) -> Iterator[pa.Table]:
        """Tables of the records from where `lines` stands, one record at a time: quoted line breaks, records over
        the bound, malformed quoting, NUL bytes and invalid UTF-8 each get their reason."""
        rows: list[tuple[int, str | None, list[str], str | None]] = []
        while True:
            lines.start_record()
            try:
                record = next(reader, None)
            except RecordTooLong as error:
                rows.append((lines.line, self.long_line_reason, [], _text(error.head)))
                continue
            except DamagedFile as error:
                if rows:
                    yield _table_from_rows(rows, columns)
                yield self._damaged_tail(error, lines.line, "")
                return
            except csv.Error as error:
                rows.append((lines.line, f"malformed CSV: {error}", [], None))
                continue
            if record is None:
                break
            if not any(cell.strip() for cell in record):
                continue
            rows.append((lines.line, self._row_reason(record, len(columns)), record, None))
            if len(rows) >= self.batch_rows:
                yield _table_from_rows(rows, columns)
                rows = []
        if rows:
            yield _table_from_rows(rows, columns)

    def _row_reason(self, record: list[str], width: int) -> str | None:
        if self.missing_columns:
            return _missing_columns_reason(self.missing_columns)
        joined = "".join(record)
        if "\x00" in joined:
            return "contains a NUL byte"
        if _has_surrogates(joined):
            return "not valid UTF-8"
        if len(record) != width:
            return _width_reason(width, len(record))
        return None

    def _check_columns(self, columns: Iterable[str]) -> None:
        present = set(columns)
        self.missing_columns = [name for name in REQUIRED_FIELDS if name not in present]
        if not present.intersection(ID_FIELDS):
            self.missing_columns.append("user_id or anonymous_id")

    # -- Parquet ------------------------------------------------------------------------------------------

    def _parquet_batches(self) -> Iterator[pa.Table]:
        with open_landing(self.path, self.root) as handle:
            try:
                parquet = pq.ParquetFile(handle)
            except DAMAGE_ERRORS as error:
                yield self._damaged_tail(error, 0, "")
                return
            columns = [canonical_name(name) for name in parquet.schema_arrow.names]
            self._check_columns(columns)
            first_row = 1
            for group in range(parquet.metadata.num_row_groups):
                size = parquet.metadata.row_group(group).total_byte_size
                if size > self.max_row_group_bytes:
                    error = DamagedFile(
                        f"row group {group} of {size} bytes is over max_row_group_bytes ({self.max_row_group_bytes})"
                    )
                    yield self._damaged_tail(error, first_row - 1, "")
                    return
                batches = parquet.iter_batches(batch_size=self.batch_rows, row_groups=[group])
                while True:
                    try:
                        batch = next(batches, None)
                    except DAMAGE_ERRORS as error:
                        yield self._damaged_tail(error, first_row - 1, "")
                        return
                    if batch is None:
                        break
                    yield self._parquet_table(batch, columns, first_row)
                    first_row += batch.num_rows

    def _parquet_table(self, batch: pa.RecordBatch, columns: list[str], first_row: int) -> pa.Table:
        n = batch.num_rows
        data: dict[str, pa.Array] = {
            "line_number": pa.array(range(first_row, first_row + n), pa.int64()),
            "raw_line": pa.nulls(n, pa.string()),
            "pre_reason": pa.array(
                [_missing_columns_reason(self.missing_columns)] * n if self.missing_columns else [None] * n,
                pa.string(),
            ),
        }
        for name in FIELDS:
            data[name] = pa.nulls(n, pa.string())
        for name, column in zip(columns, batch.columns, strict=True):
            if name in FIELDS:
                data[name] = _as_text(column, as_json=name in OBJECT_FIELDS)
        table = pa.table(data, schema=TABLE_SCHEMA)
        sizes = np.zeros(n, dtype=np.int64)
        for name in FIELDS:
            sizes += pc.binary_length(table[name]).fill_null(0).to_numpy(zero_copy_only=False)
        too_long = sizes > self.max_line_bytes
        return self._reject_rows(table, too_long) if too_long.any() else table

    def _reject_rows(self, table: pa.Table, rows: np.ndarray) -> pa.Table:
        """Rows whose cells together are over max_line_bytes: rejected, with the start of each cell as raw text."""
        mask = pa.array(rows)
        heads = table.filter(mask).select(list(FIELDS)).to_pylist()
        texts = iter(
            _text(orjson.dumps({k: v[:200] for k, v in row.items() if v is not None})[:LONG_LINE_HEAD_BYTES])
            for row in heads
        )
        raw = [next(texts) if flagged else None for flagged in rows.tolist()]
        reasons = table["pre_reason"].to_pylist()
        reasons = [
            reason or (self.long_line_reason.replace("line", "row", 1) if flagged else None)
            for reason, flagged in zip(reasons, rows.tolist(), strict=True)
        ]
        columns = {name: table[name] for name in TABLE_SCHEMA.names}
        columns["raw_line"] = pa.array(raw, pa.string())
        columns["pre_reason"] = pa.array(reasons, pa.string())
        for name in FIELDS:
            columns[name] = pc.if_else(mask, pa.scalar(None, pa.string()), table[name])
        return pa.table(columns, schema=TABLE_SCHEMA)


class RecordTooLong(Exception):
    """A CSV record over max_line_bytes; `head` is its first bytes."""

    def __init__(self, head: bytes) -> None:
        super().__init__("record too long")
        self.head = head


class _CsvLines:
    """The physical lines of a CSV file for csv.reader, one str each, with each record bounded in bytes.

    A record that grows past `max_record_bytes` (one long line, or many lines inside quotes) is skipped to its end
    (where its double quotes pair up) without being held, and RecordTooLong is raised from the reader; the csv
    module then starts afresh with the next record. `line` counts the physical lines read.
    """

    def __init__(self, items: Iterator[bytes | LongLine], max_record_bytes: int) -> None:
        self._items = items
        self._max = max_record_bytes
        self._run = b""
        self._offset = 0
        self._split: list[bytes] = []
        self.line = 0
        self.start_record()

    @property
    def items(self) -> Iterator[bytes | LongLine]:
        """The runs of lines and long lines not handed out yet."""
        return self._items

    @property
    def splitting(self) -> bool:
        """Whether pieces of a line cut at lone carriage returns are still to be handed out."""
        return bool(self._split)

    def take_rest(self) -> bytes | None:
        """The unread lines of the current run, taken out of this reader; None when there are none."""
        if self._offset >= len(self._run):
            return None
        rest = self._run[self._offset :]
        self._run, self._offset = b"", 0
        return rest

    def push_back(self, item: bytes | LongLine) -> None:
        """Give back an item taken from `items` (or `take_rest`): the next lines come from it."""
        if isinstance(item, bytes):
            self._run, self._offset = item, 0
        else:
            self._split.append(item)

    def start_record(self) -> None:
        self._record = 0
        self._quotes = 0
        self._head = b""

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        item = self._next_item()  # StopIteration ends the reader; DamagedFile goes through it
        self._count(item)
        if self._record <= self._max and isinstance(item, bytes):
            return item.decode("utf-8", "surrogateescape")
        while self._quotes % 2:  # inside a quoted field: the record goes on
            try:
                self._count(self._next_item())
            except StopIteration:
                break
        head = self._head
        self.start_record()
        raise RecordTooLong(head)

    def _count(self, item: bytes | LongLine) -> None:
        self.line += 1
        text = item.head if isinstance(item, LongLine) else item
        self._record += item.size if isinstance(item, LongLine) else len(item)
        self._quotes += item.quotes if isinstance(item, LongLine) else item.count(b'"')
        if len(self._head) < LONG_LINE_HEAD_BYTES:
            self._head += text[: LONG_LINE_HEAD_BYTES - len(self._head)]

    def _next_item(self) -> bytes | LongLine:
        if self._split:
            return self._split.pop()
        while self._offset >= len(self._run):
            item = next(self._items)
            if isinstance(item, LongLine):
                return item
            self._run, self._offset = item, 0
        end = self._run.index(b"\n", self._offset) + 1
        line = self._run[self._offset : end]
        self._offset = end
        if b"\r" in line[:-2]:
            # a lone carriage return ends a line too (old Mac files), as with open(newline="")
            parts = _LONE_CR.split(line)
            self._split = parts[:0:-1]
            return parts[0]
        return line


def _simple_csv_run(run: bytes, lines_before: int, columns: list[str]) -> pa.Table | None:
    """A run of complete lines as a table, parsed in one pass, when each of its records is one line of valid UTF-8
    with no NUL byte and no lone carriage return; None otherwise (the record-by-record reader then takes it).

    Records, line numbers and reasons are those `_csv_records` gives for such a run.
    """
    if b"\x00" in run or run.count(b"\r") != run.count(b"\r\n"):
        return None
    try:
        text = run.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # a last line of its own: an unclosed quote at the end of the run would swallow it into the record before
    reader = csv.reader(io.StringIO(text + "x\n", newline=""))
    records: list[list[str]] = []
    numbers: list[int] = []
    expected = 1
    try:
        for record in reader:
            if reader.line_num != expected:
                return None  # a record over several lines
            expected += 1
            if record and (record[0].strip() or any(cell.strip() for cell in record)):
                records.append(record)
                numbers.append(lines_before + reader.line_num)
    except csv.Error:
        return None
    if expected != run.count(b"\n") + 2 or not records or records.pop() != ["x"]:
        return None
    numbers.pop()
    width = len(columns)
    whole = [len(record) == width for record in records]
    data: dict[str, list] = {
        "line_number": numbers,
        "raw_line": [None if ok else _csv_line(record) for ok, record in zip(whole, records, strict=True)],
        "pre_reason": [None if ok else _width_reason(width, len(record))
                       for ok, record in zip(whole, records, strict=True)],
    }  # fmt: skip
    positions = {name: i for i, name in enumerate(columns) if name in FIELDS}
    for name in FIELDS:
        position = positions.get(name)
        data[name] = (
            [None] * len(records)
            if position is None
            else [(record[position] or None) if ok else None for ok, record in zip(whole, records, strict=True)]
        )
    return pa.table(data, schema=TABLE_SCHEMA)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if tables else pa.table({name: [] for name in TABLE_SCHEMA.names}, TABLE_SCHEMA)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, rows):
        yield table.slice(offset, rows)


def _lines_table(buffer: bytes, first_line: int) -> tuple[pa.Table, int]:
    """Newline-terminated bytes as a line table without a Python object per line; blank lines are skipped.

    Returns the table and the number of lines the buffer held (blank ones included).
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    line_count = len(ends)
    offsets = np.empty(line_count + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1
    lines = pa.LargeStringArray.from_buffers(line_count, pa.py_buffer(offsets), pa.py_buffer(buffer))
    reasons: list[str | None] = [None] * line_count
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        lines, reasons = _decode_line_by_line(buffer, offsets, reasons)
    for position in np.flatnonzero(data == 0):
        index = int(np.searchsorted(ends, position))
        reasons[index] = reasons[index] or "contains a NUL byte"
    text = pc.utf8_rtrim(lines, characters="\r\n").cast(pa.string())
    table = pa.table(
        {
            "line_number": pa.array(np.arange(first_line, first_line + line_count, dtype=np.int64)),
            "raw_line": text,
            "pre_reason": pa.array(reasons, pa.string()),
        },
        schema=LINE_SCHEMA,
    )
    # blank: ASCII whitespace only (bytes.strip()); any other character makes the line a row
    blank = pc.equal(pc.utf8_trim(text, characters=" \t\r\n\x0b\x0c"), "")
    if pc.any(blank).as_py():
        table = table.filter(pc.invert(blank))
    return table, line_count


def _decode_line_by_line(
    buffer: bytes, offsets: np.ndarray, reasons: list[str | None]
) -> tuple[pa.Array, list[str | None]]:
    """The slow path for a block holding invalid UTF-8: find the bad lines and keep them readable."""
    texts = []
    for index in range(len(offsets) - 1):
        raw = buffer[offsets[index] : offsets[index + 1]]
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            texts.append(raw.decode("utf-8", "backslashreplace"))
            reasons[index] = f"not valid UTF-8 (byte {error.start})"
    return pa.array(texts, pa.large_string()), reasons


def _table_from_rows(rows: list[tuple[int, str | None, list[str], str | None]], columns: list[str]) -> pa.Table:
    data: dict[str, list] = {name: [] for name in TABLE_SCHEMA.names}
    positions = {name: i for i, name in enumerate(columns) if name in FIELDS}
    for line_number, reason, record, raw in rows:
        data["line_number"].append(line_number)
        data["pre_reason"].append(reason)
        # Only rejected rows need their raw text; keep it for those alone.
        data["raw_line"].append(raw if raw is not None else _csv_line(record) if reason else None)
        usable = reason is None
        for name in FIELDS:
            position = positions.get(name)
            value = record[position] if usable and position is not None else None
            data[name].append(value if value != "" else None)
    return pa.table(data, schema=TABLE_SCHEMA)


def _csv_line(record: list[str | None]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(record)
    return buffer.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _width_reason(width: int, found: int) -> str:
    return f"expected {width} fields, found {found}"


def _missing_columns_reason(missing: list[str]) -> str:
    return "file lacks required column(s): " + ", ".join(missing)


# bytes that are not UTF-8, as decode(errors="surrogateescape") leaves them; a regex search is ~20x a char loop
_SURROGATE_ESCAPES = re.compile("[\udc80-\udcff]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATE_ESCAPES.search(text) is not None


def _as_text(column: pa.Array, *, as_json: bool) -> pa.Array:
    """A Parquet column as strings: nested values as JSON, timestamps as ISO-8601."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            column = column.cast(pa.timestamp(kind.unit, tz="UTC"))
        return column.cast(pa.string())
    if pa.types.is_nested(kind) or as_json:
        return pa.array(
            [None if value is None else orjson.dumps(value, default=str).decode() for value in column.to_pylist()],
            pa.string(),
        )
    return column.cast(pa.string())
