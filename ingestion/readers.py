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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.streams import BlockStream, DamagedFile, file_blocks

CANONICAL_FIELDS = (
    "message_id",
    "user_id",
    "anonymous_id",
    "type",
    "event",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "context",
)
# Segment's camelCase export names for the snake_case fields of the contract.
CAMEL_ALIASES = {
    "messageid": "message_id",
    "userid": "user_id",
    "anonymousid": "anonymous_id",
    "receivedat": "received_at",
}
REQUIRED_COLUMNS = ("message_id", "timestamp")
ID_COLUMNS = ("user_id", "anonymous_id")
JSON_FIELDS = ("properties", "traits", "context")

LINE_SUFFIXES = (".jsonl", ".ndjson", ".json")
DAMAGE_ERRORS = (DamagedFile, EOFError, OSError, pa.ArrowInvalid)

LINE_SCHEMA = pa.schema([("line_number", pa.int64()), ("raw_line", pa.string()), ("pre_reason", pa.string())])
TABLE_SCHEMA = pa.schema(
    [("line_number", pa.int64()), ("raw_line", pa.string()), ("pre_reason", pa.string())]
    + [(name, pa.string()) for name in CANONICAL_FIELDS]
)


def file_format(path: Path) -> str | None:
    """'jsonl', 'csv' or 'parquet' from the file name (a trailing .gz allowed), None when unsupported."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
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
    """Iterates one file's batches; `damage` and `missing_columns` are known once iteration ends."""

    path: Path
    batch_rows: int = 100_000
    fmt: str = ""
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
        self.damage = f"file damaged after line {after_line}: {error}"
        schema = LINE_SCHEMA if self.shape == "lines" else TABLE_SCHEMA
        row = {name: [None] for name in schema.names}
        row.update(line_number=[after_line + 1], raw_line=[leftover], pre_reason=[self.damage])
        return pa.table(row, schema=schema)

    # -- JSON lines ---------------------------------------------------------------------------------------

    def _line_batches(self) -> Iterator[pa.Table]:
        next_line = 1
        carry = b""
        try:
            for block in file_blocks(self.path):
                data = carry + block
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if cut:
                    table, line_count = _lines_table(data[:cut], next_line)
                    next_line += line_count
                    yield from _slices(table, self.batch_rows)
        except DamagedFile as error:
            # Whatever follows the last newline before the damage is a fragment: the damaged tail.
            yield self._damaged_tail(error, next_line - 1, carry.decode("utf-8", "backslashreplace"))
            return
        if carry:
            table, _ = _lines_table(carry + b"\n", next_line)
            yield from _slices(table, self.batch_rows)

    # -- CSV ----------------------------------------------------------------------------------------------

    def _csv_batches(self) -> Iterator[pa.Table]:
        stream = io.BufferedReader(BlockStream(file_blocks(self.path, block_bytes=1 << 20)))
        with io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="") as text:
            reader = csv.reader(text)
            try:
                header = next(reader, None)
            except DAMAGE_ERRORS as error:
                yield self._damaged_tail(error, 0, "")
                return
            if header is None:
                return
            columns = [canonical_name(name) for name in header]
            self._check_columns(columns)
            rows: list[tuple[int, str | None, list[str | None]]] = []
            while True:
                try:
                    record = next(reader, None)
                except DAMAGE_ERRORS as error:
                    if rows:
                        yield _table_from_rows(rows, columns)
                    yield self._damaged_tail(error, reader.line_num, "")
                    return
                except csv.Error as error:
                    rows.append((reader.line_num, f"malformed CSV: {error}", []))
                    continue
                if record is None:
                    break
                if not any(cell.strip() for cell in record):
                    continue
                rows.append((reader.line_num, self._row_reason(record, len(columns)), record))
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
            return f"expected {width} fields, found {len(record)}"
        return None

    def _check_columns(self, columns: Iterable[str]) -> None:
        present = set(columns)
        self.missing_columns = [name for name in REQUIRED_COLUMNS if name not in present]
        if not present.intersection(ID_COLUMNS):
            self.missing_columns.append("user_id or anonymous_id")

    # -- Parquet ------------------------------------------------------------------------------------------

    def _parquet_batches(self) -> Iterator[pa.Table]:
        try:
            parquet = pq.ParquetFile(self.path)
        except DAMAGE_ERRORS as error:
            yield self._damaged_tail(error, 0, "")
            return
        columns = [canonical_name(name) for name in parquet.schema_arrow.names]
        self._check_columns(columns)
        first_row = 1
        batches = parquet.iter_batches(batch_size=self.batch_rows)
        while True:
            try:
                batch = next(batches, None)
            except DAMAGE_ERRORS as error:
                yield self._damaged_tail(error, first_row - 1, "")
                return
            if batch is None:
                return
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
        for name in CANONICAL_FIELDS:
            data[name] = pa.nulls(n, pa.string())
        for name, column in zip(columns, batch.columns, strict=True):
            if name in CANONICAL_FIELDS:
                data[name] = _as_text(column, as_json=name in JSON_FIELDS)
        return pa.table(data, schema=TABLE_SCHEMA)


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
    blank = pc.equal(pc.utf8_trim_whitespace(text), "")
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


def _table_from_rows(rows: list[tuple[int, str | None, list[str | None]]], columns: list[str]) -> pa.Table:
    data: dict[str, list] = {name: [] for name in TABLE_SCHEMA.names}
    positions = {name: i for i, name in enumerate(columns) if name in CANONICAL_FIELDS}
    for line_number, reason, record in rows:
        data["line_number"].append(line_number)
        data["pre_reason"].append(reason)
        # Only rejected rows need their raw text; keep it for those alone.
        data["raw_line"].append(_csv_line(record) if reason else None)
        usable = reason is None
        for name in CANONICAL_FIELDS:
            position = positions.get(name)
            value = record[position] if usable and position is not None else None
            data[name].append(value if value != "" else None)
    return pa.table(data, schema=TABLE_SCHEMA)


def _csv_line(record: list[str | None]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(record)
    return buffer.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _missing_columns_reason(missing: list[str]) -> str:
    return "file lacks required column(s): " + ", ".join(missing)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


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
