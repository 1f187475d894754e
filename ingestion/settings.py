"""Where ingestion reads and writes, and the thresholds of the input contract.

Every bound on what a file can make ingestion read, hold or store is a setting here, read from the environment by
`IngestSettings.from_env` with the default shown beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from event_contract import FUTURE_TOLERANCE_HOURS, MAX_PROPERTY_BYTES, MIN_EVENT_TIME

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30


def data_dir_from_env() -> Path:
    """`DATA_DIR` (default `data/` under the working directory), made absolute."""
    return Path(os.environ.get("DATA_DIR", "data")).expanduser().resolve()


def parse_moment(name: str, text: str) -> datetime:
    """An ISO-8601 time from the setting `name`, as an aware UTC datetime (no offset means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text!r} is not an ISO-8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def min_event_time_from_env() -> datetime:
    """`MIN_EVENT_TIME` (default 2000-01-01T00:00:00Z): events dated before it are rejected."""
    text = os.environ.get("MIN_EVENT_TIME", "").strip()
    return parse_moment("MIN_EVENT_TIME", text) if text else MIN_EVENT_TIME


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={value} is below its minimum of {minimum}")
    return value


@dataclass(frozen=True)
class IngestSettings:
    """Paths and contract thresholds for one ingestion run."""

    data_dir: Path
    settle_seconds: float = 5.0
    future_tolerance_hours: float = FUTURE_TOLERANCE_HOURS
    max_property_bytes: int = MAX_PROPERTY_BYTES
    batch_rows: int = 100_000
    # A line (JSONL) or record (CSV, Parquet row) longer than this is one rejected row; it is never held whole.
    max_line_bytes: int = 4 * MIB
    # What raw.events_rejected keeps of any rejected row's text: its first bytes.
    max_raw_line_bytes: int = 64 * KIB
    # A compressed file is read up to this many inflated bytes; the rest is one rejected row.
    max_inflated_bytes: int = 4 * GIB
    # A Parquet row group larger than this (uncompressed, as its metadata says) ends the file as damaged.
    max_row_group_bytes: int = 512 * MIB
    # A file whose load fails is tried on this many runs in all, then quarantined.
    max_file_attempts: int = 3
    # DuckDB's memory bound for the ingestion connection (it spills to disk or fails that one file past it).
    memory_limit: str = "50%"
    min_event_time: datetime = MIN_EVENT_TIME

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @classmethod
    def from_env(cls) -> IngestSettings:
        """Settings from the environment, with the contract's defaults: DATA_DIR, SETTLE_SECONDS,
        FUTURE_TOLERANCE_HOURS, MAX_LINE_BYTES, MAX_RAW_LINE_BYTES, MAX_INFLATED_BYTES, MAX_ROW_GROUP_BYTES,
        INGEST_MAX_FILE_ATTEMPTS, INGEST_MEMORY_LIMIT and MIN_EVENT_TIME."""
        settings = cls(
            data_dir=data_dir_from_env(),
            settle_seconds=float(os.environ.get("SETTLE_SECONDS", "5")),
            future_tolerance_hours=float(os.environ.get("FUTURE_TOLERANCE_HOURS", FUTURE_TOLERANCE_HOURS)),
            max_line_bytes=_int_env("MAX_LINE_BYTES", cls.max_line_bytes),
            max_raw_line_bytes=_int_env("MAX_RAW_LINE_BYTES", cls.max_raw_line_bytes, minimum=16),
            max_inflated_bytes=_int_env("MAX_INFLATED_BYTES", cls.max_inflated_bytes),
            max_row_group_bytes=_int_env("MAX_ROW_GROUP_BYTES", cls.max_row_group_bytes),
            max_file_attempts=_int_env("INGEST_MAX_FILE_ATTEMPTS", cls.max_file_attempts),
            memory_limit=os.environ.get("INGEST_MEMORY_LIMIT", "").strip() or cls.memory_limit,
            min_event_time=min_event_time_from_env(),
        )
        if settings.max_line_bytes <= settings.max_property_bytes:
            raise ValueError(
                f"MAX_LINE_BYTES={settings.max_line_bytes} must stay above the properties limit of "
                f"{settings.max_property_bytes} bytes, or that rule could never be reached"
            )
        return settings
