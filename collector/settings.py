"""Where the collector listens, which write keys it knows, and how it spools: all from the environment."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from event_contract import FUTURE_TOLERANCE_HOURS, MIN_EVENT_TIME

log = logging.getLogger(__name__)

# Segment's HTTP Tracking API limits: 32 KB a call or event, 500 KB a batch request.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
DEV_WRITE_KEYS = {"dev": "dev"}
MAX_JSON_DEPTH = 64  # nesting of objects and arrays in one event, the event itself being level 1
READ_TIMEOUT_SECONDS = 10.0  # from a request's first byte (or the connection's opening) to its last body byte
KEEP_ALIVE_SECONDS = 5.0
MAX_CONNECTIONS = 1000  # under a 1024 open-file limit with room for the spool, logs and the listening socket
MAX_HEADER_BYTES = 32 * 1024  # request line and headers of one request


class SettingsError(ValueError):
    """A collector environment variable holds a value the collector cannot use."""


def parse_write_keys(text: str | None) -> dict[str, str]:
    """`key:source,key:source` -> {key: source}; None or blank gives the development key `dev`."""
    if text is None or not text.strip():
        return dict(DEV_WRITE_KEYS)
    keys: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, source = item.partition(":")
        key, source = key.strip(), source.strip()
        if not sep or not key or not source:
            raise SettingsError(f"COLLECTOR_WRITE_KEYS: {item!r} is not of the form key:source")
        if key in keys and keys[key] != source:
            raise SettingsError(f"COLLECTOR_WRITE_KEYS: key {key!r} is given for two sources")
        keys[key] = source
    if not keys:
        raise SettingsError("COLLECTOR_WRITE_KEYS holds no key:source pair")
    return keys


def parse_moment(name: str, text: str) -> datetime:
    """An ISO-8601 time (no offset means UTC) from the setting `name`."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise SettingsError(f"{name}={text!r} is not an ISO-8601 time") from None


def _number(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} is below {minimum:g}")
    return value


@dataclass(frozen=True)
class CollectorSettings:
    """Everything the collector needs; `from_env` reads it the way DESIGN.md documents."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8090
    write_keys: dict[str, str] = field(default_factory=lambda: dict(DEV_WRITE_KEYS))
    rotate_seconds: float = 5.0
    rotate_events: int = 50_000
    max_event_bytes: int = MAX_EVENT_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES
    future_tolerance_hours: float = FUTURE_TOLERANCE_HOURS
    spool_dir_override: Path | None = None
    dev_key_warning: bool = False
    workers: int = 1  # processes; each spools on its own and keeps its own /metrics (a scrape sees one of them)
    cors_origins: tuple[str, ...] = ("*",)  # browsers (analytics.js) post from any site, as to Segment's API
    max_json_depth: int = MAX_JSON_DEPTH
    min_event_time: datetime = MIN_EVENT_TIME
    read_timeout_seconds: float = READ_TIMEOUT_SECONDS
    keep_alive_seconds: float = KEEP_ALIVE_SECONDS
    max_connections: int = MAX_CONNECTIONS
    max_header_bytes: int = MAX_HEADER_BYTES
    metrics_token: str | None = None  # when set, /metrics needs `Authorization: Bearer <token>`
    metrics_port: int | None = None  # when set, /metrics is served on 127.0.0.1:<port> only, not on the ingest port

    def __post_init__(self) -> None:
        if self.metrics_port is not None and self.workers > 1:
            raise SettingsError(
                "COLLECTOR_METRICS_PORT needs COLLECTOR_WORKERS=1 (each worker keeps its own metrics); "
                "protect /metrics with COLLECTOR_METRICS_TOKEN instead"
            )

    @property
    def landing_dir(self) -> Path:
        """Where rotated spool files go: a `collector/` subfolder of the landing folder."""
        return self.data_dir / "landing" / "collector"

    @property
    def spool_root(self) -> Path:
        """Where each process keeps its open spool file (in a subfolder of its own): outside the landing folder,
        on the same file system so that rotation is one atomic rename."""
        return self.spool_dir_override or self.data_dir / "spool" / "collector"

    @classmethod
    def from_env(cls) -> CollectorSettings:
        """Read DATA_DIR, COLLECTOR_HOST/PORT/WRITE_KEYS, COLLECTOR_ROTATE_SECONDS/EVENTS, COLLECTOR_SPOOL_DIR,
        COLLECTOR_MAX_EVENT_BYTES/MAX_BATCH_BYTES/MAX_JSON_DEPTH/MAX_HEADER_BYTES/MAX_CONNECTIONS,
        COLLECTOR_READ_TIMEOUT_SECONDS/TIMEOUT_KEEP_ALIVE_SECONDS, COLLECTOR_METRICS_TOKEN/METRICS_PORT,
        COLLECTOR_WORKERS, COLLECTOR_CORS_ORIGINS, FUTURE_TOLERANCE_HOURS and MIN_EVENT_TIME."""
        raw_keys = os.environ.get("COLLECTOR_WRITE_KEYS")
        spool = os.environ.get("COLLECTOR_SPOOL_DIR")
        min_time = os.environ.get("MIN_EVENT_TIME", "").strip()
        metrics_port = os.environ.get("COLLECTOR_METRICS_PORT", "").strip()
        return cls(
            data_dir=Path(os.environ.get("DATA_DIR", "data")).expanduser().resolve(),
            host=os.environ.get("COLLECTOR_HOST", "127.0.0.1") or "127.0.0.1",
            port=int(_number("COLLECTOR_PORT", 8090)),
            write_keys=parse_write_keys(raw_keys),
            rotate_seconds=_number("COLLECTOR_ROTATE_SECONDS", 5.0, minimum=0.05),
            rotate_events=int(_number("COLLECTOR_ROTATE_EVENTS", 50_000, minimum=1)),
            max_event_bytes=int(_number("COLLECTOR_MAX_EVENT_BYTES", MAX_EVENT_BYTES, minimum=1)),
            max_batch_bytes=int(_number("COLLECTOR_MAX_BATCH_BYTES", MAX_BATCH_BYTES, minimum=1)),
            future_tolerance_hours=_number("FUTURE_TOLERANCE_HOURS", FUTURE_TOLERANCE_HOURS),
            spool_dir_override=Path(spool).expanduser().resolve() if spool else None,
            dev_key_warning=raw_keys is None or not raw_keys.strip(),
            workers=int(_number("COLLECTOR_WORKERS", 1, minimum=1)),
            cors_origins=tuple(
                origin.strip() for origin in os.environ.get("COLLECTOR_CORS_ORIGINS", "*").split(",") if origin.strip()
            ),
            max_json_depth=int(_number("COLLECTOR_MAX_JSON_DEPTH", MAX_JSON_DEPTH, minimum=2)),
            min_event_time=parse_moment("MIN_EVENT_TIME", min_time) if min_time else MIN_EVENT_TIME,
            read_timeout_seconds=_number("COLLECTOR_READ_TIMEOUT_SECONDS", READ_TIMEOUT_SECONDS, minimum=0.05),
            keep_alive_seconds=_number("COLLECTOR_TIMEOUT_KEEP_ALIVE_SECONDS", KEEP_ALIVE_SECONDS, minimum=0.05),
            max_connections=int(_number("COLLECTOR_MAX_CONNECTIONS", MAX_CONNECTIONS, minimum=1)),
            max_header_bytes=int(_number("COLLECTOR_MAX_HEADER_BYTES", MAX_HEADER_BYTES, minimum=1024)),
            metrics_token=os.environ.get("COLLECTOR_METRICS_TOKEN", "").strip() or None,
            metrics_port=int(_number("COLLECTOR_METRICS_PORT", 0, minimum=1)) if metrics_port else None,
        )
