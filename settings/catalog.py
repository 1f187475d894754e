"""Every setting of the product, named once with its environment variable, default, type, unit and meaning.

Settings are grouped in sections, one frozen dataclass per package that uses them; `Settings.from_env()` reads the
whole environment once and hands each package its section. Nothing else in the product reads the environment
(tests/test_settings.py checks that, and that docs/settings.md lists every setting here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from event_contract import FUTURE_TOLERANCE_HOURS, MAX_PROPERTY_BYTES, MIN_EVENT_TIME
from settings.fields import SettingError, Spec, convert, parse_moment, read_section, setting

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
DEV_WRITE_KEYS = {"dev": "dev"}


def _key_pairs(text: str | None, variable: str, what: str) -> dict[str, str]:
    """`key:<what>,key:<what>` -> {key: <what>}; None or blank gives the development key `dev`."""
    if text is None or not text.strip():
        return dict(DEV_WRITE_KEYS)
    keys: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise SettingError(f"{variable}: {item!r} is not of the form key:{what}")
        if key in keys and keys[key] != value:
            raise SettingError(f"{variable}: key {key!r} is given for two {what}s")
        keys[key] = value
    if not keys:
        raise SettingError(f"{variable} holds no key:{what} pair")
    return keys


def parse_write_keys(text: str | None) -> dict[str, str]:
    """COLLECTOR_WRITE_KEYS: `key:source,key:source` -> {key: source}; None or blank gives the development key
    `dev`."""
    return _key_pairs(text, "COLLECTOR_WRITE_KEYS", "source")


def parse_api_keys(text: str | None) -> dict[str, str]:
    """LIVE_API_KEYS: `key:name,key:name` -> {key: name}; None or blank gives the development key `dev`."""
    return _key_pairs(text, "LIVE_API_KEYS", "name")


def _min_event_time(text: str) -> datetime:
    return parse_moment("MIN_EVENT_TIME", text)


@dataclass(frozen=True)
class ContractSettings:
    """Input-contract thresholds the collector and ingestion share."""

    future_tolerance_hours: float = setting(
        "FUTURE_TOLERANCE_HOURS", float(FUTURE_TOLERANCE_HOURS), unit="hours", minimum=0,
        meaning="an event dated more than this after its received_at (or the load time) is rejected",
    )  # fmt: skip
    min_event_time: datetime = setting(
        "MIN_EVENT_TIME", MIN_EVENT_TIME, unit="ISO-8601 time", parse=_min_event_time,
        meaning="an event dated before this is rejected (no offset means UTC)",
    )  # fmt: skip


def _field_paths(text: str) -> tuple[str, ...]:
    """`traits.email,context.ip`: fields of traits or context, by top-level name."""
    paths = tuple(item.strip() for item in text.split(",") if item.strip())
    for path in paths:
        root, _, name = path.partition(".")
        if root not in ("traits", "context") or not name or "." in name:
            raise SettingError(
                f"{path!r} is not a field path: write traits.<name> or context.<name> (top-level fields only)"
            )
    return paths


@dataclass(frozen=True)
class PrivacySettings:
    """Erasure, suppression, pseudonymisation at ingestion and how long raw data is kept."""

    data_dir: Path
    key: str | None = setting(
        "PRIVACY_KEY", None, unit="secret", secret=True,
        default_text="a random key made once in $DATA_DIR/privacy/key",
        meaning="HMAC key of the suppression list, the erasure ledger and pseudonymised ids; keep it stable",
    )  # fmt: skip
    pseudonymise_ids: bool = setting(
        "PSEUDONYMISE_IDS", False, unit="true/false",
        meaning="ingestion replaces user and anonymous ids by their keyed hash, so no table holds clear ids "
        "(needs PRIVACY_KEY)",
    )  # fmt: skip
    drop_fields: tuple[str, ...] = setting(
        "PRIVACY_DROP_FIELDS", (), unit="field paths, comma-separated", parse=_field_paths,
        meaning="trait and context fields removed at ingestion (e.g. traits.email,context.ip)",
    )  # fmt: skip
    hash_fields: tuple[str, ...] = setting(
        "PRIVACY_HASH_FIELDS", (), unit="field paths, comma-separated", parse=_field_paths,
        meaning="trait and context fields replaced by their keyed hash at ingestion (e.g. traits.email)",
    )  # fmt: skip
    retention_days: int = setting(
        "RAW_RETENTION_DAYS", 0, unit="days", minimum=0,
        meaning="the daily schedule deletes raw events, rejected rows and landing files older than this "
        "(marts keep their aggregates); 0 keeps them for ever",
    )  # fmt: skip

    @property
    def privacy_dir(self) -> Path:
        return self.data_dir / "privacy"

    @property
    def key_path(self) -> Path:
        return self.privacy_dir / "key"

    @property
    def suppression_path(self) -> Path:
        return self.privacy_dir / "suppressed_ids.txt"

    @property
    def ledger_path(self) -> Path:
        return self.privacy_dir / "erasure_ledger.jsonl"

    @property
    def requests_dir(self) -> Path:
        return self.privacy_dir / "requests"

    def check(self) -> PrivacySettings:
        """The settings, after the checks that span two of them (raises SettingError)."""
        if self.pseudonymise_ids and not self.key:
            raise SettingError("PSEUDONYMISE_IDS=true needs PRIVACY_KEY: pseudonyms must not change with the folder")
        both = sorted(set(self.drop_fields) & set(self.hash_fields))
        if both:
            raise SettingError(f"PRIVACY_DROP_FIELDS and PRIVACY_HASH_FIELDS both name {', '.join(both)}")
        return self


@dataclass(frozen=True)
class IngestSettings:
    """Where ingestion reads and writes, and every bound on what a file can make it read, hold or store."""

    data_dir: Path
    settle_seconds: float = setting(
        "SETTLE_SECONDS", 5.0, unit="seconds", minimum=0,
        meaning="a landing file modified within this is still being written and waits for the next run",
    )  # fmt: skip
    max_line_bytes: int = setting(
        "MAX_LINE_BYTES", 4 * MIB, unit="bytes", minimum=1, default_text="4194304 (4 MiB)",
        meaning="a longer line or record is one rejected row, read in bounded memory; must exceed 1 MB",
    )  # fmt: skip
    max_raw_line_bytes: int = setting(
        "MAX_RAW_LINE_BYTES", 64 * KIB, unit="bytes", minimum=16, default_text="65536 (64 KiB)",
        meaning="what raw.events_rejected keeps of a rejected row's text: its first bytes",
    )  # fmt: skip
    max_inflated_bytes: int = setting(
        "MAX_INFLATED_BYTES", 4 * GIB, unit="bytes", minimum=1, default_text="4294967296 (4 GiB)",
        meaning="a compressed file is read up to this many inflated bytes; the rest is one rejected row",
    )  # fmt: skip
    max_row_group_bytes: int = setting(
        "MAX_ROW_GROUP_BYTES", 512 * MIB, unit="bytes", minimum=1, default_text="536870912 (512 MiB)",
        meaning="a Parquet row group larger than this (uncompressed) ends the file as damaged",
    )  # fmt: skip
    max_file_attempts: int = setting(
        "INGEST_MAX_FILE_ATTEMPTS", 3, unit="runs", minimum=1,
        meaning="a file whose load fails is tried on this many runs in all, then quarantined",
    )  # fmt: skip
    memory_limit: str = setting(
        "INGEST_MEMORY_LIMIT", "50%", unit="DuckDB size",
        meaning="DuckDB's memory bound for the ingestion connection (it spills or fails that one file past it)",
    )  # fmt: skip
    s3_bucket: str = setting(
        "LANDING_S3_BUCKET", "", unit="bucket", default_text="none (off)",
        meaning="an S3 or S3-compatible bucket whose objects (under LANDING_S3_PREFIX) are copied into "
        "landing/s3/<bucket>/ before each load, e.g. where Segment's or RudderStack's S3 destination writes",
    )  # fmt: skip
    s3_prefix: str = setting("LANDING_S3_PREFIX", "", unit="key prefix", meaning="only objects under this prefix")
    s3_endpoint_url: str = setting(
        "LANDING_S3_ENDPOINT_URL", "", unit="URL", default_text="AWS's",
        meaning="an S3-compatible server (MinIO, Ceph, moto); credentials come from boto3's usual chain "
        "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)",
    )  # fmt: skip
    s3_region: str = setting("LANDING_S3_REGION", "us-east-1", unit="region", meaning="the bucket's region")
    s3_max_object_bytes: int = setting(
        "LANDING_S3_MAX_OBJECT_BYTES", 4 << 30, unit="bytes", minimum=1,
        meaning="a larger object is not copied (reported, with its key)",
    )  # fmt: skip
    s3_max_bytes_per_sync: int = setting(
        "LANDING_S3_MAX_BYTES_PER_SYNC", 1 << 30, unit="bytes", minimum=1,
        meaning="one sync copies objects until this much is copied; the rest waits for the next one",
    )  # fmt: skip
    # from ContractSettings (Settings.from_env fills them); the contract's defaults when built by hand
    future_tolerance_hours: float = float(FUTURE_TOLERANCE_HOURS)
    min_event_time: datetime = MIN_EVENT_TIME
    # contract constants and internal sizes, not settings
    max_property_bytes: int = MAX_PROPERTY_BYTES
    batch_rows: int = 100_000
    # suppression and pseudonymisation (Settings.from_env fills it; the defaults under data_dir when None)
    privacy_section: PrivacySettings | None = None

    @property
    def privacy(self) -> PrivacySettings:
        return self.privacy_section or PrivacySettings(self.data_dir)

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    def check(self) -> IngestSettings:
        """The settings, after the checks that span two of them (raises SettingError)."""
        if self.max_line_bytes <= self.max_property_bytes:
            raise SettingError(
                f"MAX_LINE_BYTES={self.max_line_bytes} must stay above the properties limit of "
                f"{self.max_property_bytes} bytes, or that rule could never be reached"
            )
        return self

    @classmethod
    def from_env(cls) -> IngestSettings:
        """This section of `Settings.from_env()`."""
        return Settings.from_env().ingest


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the batch gate's rules."""

    volume_min_ratio: float = setting(
        "GATE_VOLUME_MIN_RATIO", 0.05, unit="ratio", minimum=0,
        meaning="a batch smaller than this times the trailing average fails the volume rule",
    )  # fmt: skip
    volume_max_ratio: float = setting(
        "GATE_VOLUME_MAX_RATIO", 20.0, unit="ratio", minimum=0,
        meaning="a batch larger than this times the trailing average fails the volume rule",
    )  # fmt: skip
    # Batches smaller than this are not judged on volume and are left out of the trailing average: a collector
    # rotating its spool every few seconds, or a sensor run started by one small file, lands batches of a handful of
    # rows whose size says nothing about whether an upstream export was cut short.
    volume_min_rows: int = setting(
        "GATE_VOLUME_MIN_ROWS", 1000, unit="rows", minimum=0,
        meaning="batches smaller than this are not judged on volume nor counted in the average",
    )  # fmt: skip
    null_share_jump: float = setting(
        "GATE_NULL_SHARE_JUMP", 0.25, unit="share", minimum=0,
        meaning="a column whose share of nulls rises by more than this against recent batches fails the gate",
    )  # fmt: skip
    volume_history: int = 7
    volume_min_history: int = 5
    min_rows_for_shares: int = 100


@dataclass(frozen=True)
class CollectorSettings:
    """Where the collector listens, which write keys it knows, how it spools, and its bounds."""

    data_dir: Path
    host: str = setting("COLLECTOR_HOST", "127.0.0.1", unit="address", meaning="where the collector listens")
    port: int = setting("COLLECTOR_PORT", 8090, unit="port", minimum=0, meaning="where the collector listens")
    write_keys: dict[str, str] = setting(
        "COLLECTOR_WRITE_KEYS", DEV_WRITE_KEYS, unit="key:source,...", parse=parse_write_keys, secret=True,
        default_text="dev:dev (with a warning in the log)",
        meaning="the write keys SDKs send (HTTP basic user) and the source each one names",
    )  # fmt: skip
    rotate_seconds: float = setting(
        "COLLECTOR_ROTATE_SECONDS", 5.0, unit="seconds", minimum=0.05,
        meaning="the spool is rotated into the landing folder at least this often",
    )  # fmt: skip
    rotate_events: int = setting(
        "COLLECTOR_ROTATE_EVENTS", 50_000, unit="events", minimum=1,
        meaning="the spool is rotated when it holds this many events",
    )  # fmt: skip
    max_event_bytes: int = setting(
        "COLLECTOR_MAX_EVENT_BYTES", 32 * KIB, unit="bytes", minimum=1,
        meaning="a larger event is rejected (Segment's limit: 32 KB)",
    )  # fmt: skip
    max_batch_bytes: int = setting(
        "COLLECTOR_MAX_BATCH_BYTES", 500 * KIB, unit="bytes", minimum=1,
        meaning="a larger request body gets 413 (Segment's limit: 500 KB)",
    )  # fmt: skip
    spool_dir_override: Path | None = setting(
        "COLLECTOR_SPOOL_DIR", None, unit="path", default_text="$DATA_DIR/spool/collector",
        meaning="where each process keeps its open spool file (same file system as the landing folder)",
    )  # fmt: skip
    workers: int = setting(
        "COLLECTOR_WORKERS", 1, unit="processes", minimum=1,
        meaning="collector processes; each spools on its own and keeps its own /metrics",
    )  # fmt: skip
    cors_origins: tuple[str, ...] = setting(
        "COLLECTOR_CORS_ORIGINS", ("*",), unit="origins, comma-separated",
        meaning="browser origins allowed to post (analytics.js posts from any site, as to Segment's API)",
    )  # fmt: skip
    max_json_depth: int = setting(
        "COLLECTOR_MAX_JSON_DEPTH", 64, unit="levels", minimum=2,
        meaning="nesting of objects and arrays in one event, the event itself being level 1",
    )  # fmt: skip
    read_timeout_seconds: float = setting(
        "COLLECTOR_READ_TIMEOUT_SECONDS", 10.0, unit="seconds", minimum=0.05,
        meaning="from a request's first byte (or the connection's opening) to its last body byte; then 408",
    )  # fmt: skip
    keep_alive_seconds: float = setting(
        "COLLECTOR_TIMEOUT_KEEP_ALIVE_SECONDS", 5.0, unit="seconds", minimum=0.05,
        meaning="an idle keep-alive connection is closed after this",
    )  # fmt: skip
    max_connections: int = setting(
        "COLLECTOR_MAX_CONNECTIONS", 1000, unit="connections", minimum=1,
        meaning="connections held at once (lowered under the open-file limit); more get 503",
    )  # fmt: skip
    max_header_bytes: int = setting(
        "COLLECTOR_MAX_HEADER_BYTES", 32 * KIB, unit="bytes", minimum=1024,
        meaning="request line and headers of one request; more gets 431",
    )  # fmt: skip
    metrics_token: str | None = setting(
        "COLLECTOR_METRICS_TOKEN", None, unit="text", secret=True,
        meaning="when set, /metrics needs `Authorization: Bearer <token>`",
    )  # fmt: skip
    metrics_port: int | None = setting(
        "COLLECTOR_METRICS_PORT", None, unit="port", minimum=1,
        meaning="when set, /metrics is served on 127.0.0.1:<port> only, not on the ingest port",
    )  # fmt: skip
    future_tolerance_hours: float = float(FUTURE_TOLERANCE_HOURS)  # from ContractSettings
    min_event_time: datetime = MIN_EVENT_TIME  # from ContractSettings
    dev_key_warning: bool = False  # true when COLLECTOR_WRITE_KEYS was not set
    # the suppression list (Settings.from_env fills it; the defaults under data_dir when None)
    privacy_section: PrivacySettings | None = None

    @property
    def privacy(self) -> PrivacySettings:
        return self.privacy_section or PrivacySettings(self.data_dir)

    def __post_init__(self) -> None:
        if self.metrics_port is not None and self.workers > 1:
            raise SettingError(
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
        """This section of `Settings.from_env()`."""
        return Settings.from_env().collector


@dataclass(frozen=True)
class ActivationSettings:
    """Where audience files go and where (if anywhere) the webhook is."""

    export_dir: Path
    webhook_url: str | None = setting(
        "ACTIVATION_WEBHOOK_URL",
        None,
        unit="URL",
        meaning="where audience entries and KPI alerts are POSTed (unset: files only, under $DATA_DIR/activation/)",
    )
    secret: str | None = setting(
        "ACTIVATION_WEBHOOK_SECRET", None, unit="text", secret=True,
        meaning="HMAC-SHA256 key of the X-Activation-Signature header (t=...,v1=...; check with "
        "activation.verify_signature); required when a webhook is set",
    )  # fmt: skip
    batch_size: int = setting("ACTIVATION_BATCH_SIZE", 500, unit="items", meaning="items in one POST")
    max_attempts: int = setting(
        "ACTIVATION_MAX_ATTEMPTS",
        5,
        unit="attempts",
        meaning="tries of one POST within a run (retries on 408/425/429/5xx)",
    )
    backoff_seconds: float = setting(
        "ACTIVATION_BACKOFF_SECONDS", 0.5, unit="seconds", meaning="first wait between tries (doubling, at most 30 s)"
    )
    timeout_seconds: float = setting(
        "ACTIVATION_TIMEOUT_SECONDS", 10.0, unit="seconds", meaning="how long one POST may take"
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise SettingError(f"ACTIVATION_BATCH_SIZE must be at least 1, got {self.batch_size}")
        if self.webhook_url and not self.secret:
            raise SettingError(
                "ACTIVATION_WEBHOOK_URL is set but ACTIVATION_WEBHOOK_SECRET is not: refusing to send unsigned"
            )


@dataclass(frozen=True)
class MLSettings:
    """Where MLflow tracks and registers, and the thresholds of the ML assets."""

    data_dir: Path
    tracking_uri: str = setting(
        "MLFLOW_TRACKING_URI", "", unit="URI", default_text="sqlite:///$DATA_DIR/mlflow.db",
        meaning="MLflow tracking and registry store",
    )  # fmt: skip
    ui_url: str = setting(
        "MLFLOW_UI_URL", "http://127.0.0.1:5000", unit="URL", meaning="the MLflow UI, for links in Dagster"
    )
    drift_psi_threshold: float = setting(
        "ML_DRIFT_PSI_THRESHOLD", 0.25, unit="PSI", minimum=0,
        meaning="a feature drifting more than this marks its model for retraining",
    )  # fmt: skip
    max_champion_age_days: float = setting(
        "ML_MAX_CHAMPION_AGE_DAYS", 7.0, unit="days of data", minimum=0,
        meaning="a champion trained on data older than this is retrained",
    )  # fmt: skip
    cluster_low_data_events: int = setting(
        "ML_CLUSTER_LOW_DATA_EVENTS", 10, unit="events", minimum=1,
        meaning="a user's cluster resting on fewer of its actions is flagged as too little data (it still gets one)",
    )  # fmt: skip
    cluster_fit_users: int = setting(
        "ML_CLUSTER_FIT_USERS", 20_000, unit="users", minimum=0,
        meaning="clustering candidates are fitted on at most this many training users drawn at random (0: all); "
        "the chosen one is then refined on all of them",
    )  # fmt: skip
    churn_importance_rows: int = setting(
        "ML_CHURN_IMPORTANCE_ROWS", 10_000, unit="holdout users", minimum=0,
        meaning="the churn model's permutation importance is estimated on at most this many holdout users drawn "
        "at random (0: all); its holdout metrics always use all of them",
    )  # fmt: skip
    recommendation_max_products: int = setting(
        "ML_RECOMMENDATION_MAX_PRODUCTS", 5_000, unit="products", minimum=1,
        meaning="the recommendation model learns the products most users touched, at most this many (its "
        "similarity matrix is this squared: 5,000 is 200 MB)",
    )  # fmt: skip
    recommendations_per_user: int = setting(
        "ML_RECOMMENDATIONS_PER_USER", 20, unit="products", minimum=1,
        meaning="recommendations written per user to ml.recommendations (the profile API serves up to this many)",
    )  # fmt: skip
    retrain_cooldown_hours: float = setting(
        "ML_RETRAIN_COOLDOWN_HOURS", 24.0, unit="hours", minimum=0,
        meaning="after a training, drift marks the model again only this much later",
    )  # fmt: skip

    @property
    def tracking_store(self) -> str:
        """The tracking URI: MLFLOW_TRACKING_URI, else SQLite at $DATA_DIR/mlflow.db (absolute)."""
        return self.tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """Where run artifacts and model files go for the default local store."""
        return self.data_dir / "mlartifacts"


@dataclass(frozen=True)
class QualitySettings:
    """Great Expectations results kept, and what the suites' DuckDB may use of the machine."""

    gx_keep_results: int = setting(
        "GX_KEEP_RESULTS", 50, unit="results", minimum=1, meaning="validation results kept per suite"
    )
    suite_memory_limit: str = setting(
        "SUITE_MEMORY_LIMIT", "50%", unit="DuckDB size",
        meaning="DuckDB's memory bound for the connections the expectation suites (the batch gate's and the asset "
        "checks') read through; a large selection spills to disk past it",
    )  # fmt: skip


@dataclass(frozen=True)
class LiveSettings:
    """The live path (live/): the consumer that tails the collector's spool into per-user state in Redis."""

    data_dir: Path
    redis_url: str = setting(
        "LIVE_REDIS_URL", "redis://127.0.0.1:6379/0", unit="redis:// URL", secret=True,
        meaning="the Redis the live consumer writes and the profile API reads (`make dev` starts one on this port)",
    )  # fmt: skip
    key_prefix: str = setting(
        "LIVE_KEY_PREFIX", "live", unit="text",
        meaning="every live key starts with `<prefix>:` (several warehouses can share one Redis)",
    )  # fmt: skip
    poll_seconds: float = setting(
        "LIVE_POLL_SECONDS", 0.1, unit="seconds", minimum=0.01,
        meaning="when the spool had nothing new, the consumer looks again after this",
    )  # fmt: skip
    batch_events: int = setting(
        "LIVE_BATCH_EVENTS", 2000, unit="events", minimum=1,
        meaning="events applied in one Redis transaction, with the file offsets they move",
    )  # fmt: skip
    max_read_bytes: int = setting(
        "LIVE_MAX_READ_BYTES", 4 * MIB, unit="bytes", minimum=64 * KIB,
        meaning="the most the consumer reads from one file at a time (its memory bound)",
    )  # fmt: skip
    session_gap_minutes: float = setting(
        "LIVE_SESSION_GAP_MINUTES", 30.0, unit="minutes", minimum=1,
        meaning="a user's live session ends after this long without an event (the warehouse's sessions: 30)",
    )  # fmt: skip
    state_ttl_days: float = setting(
        "LIVE_STATE_TTL_DAYS", 30.0, unit="days", minimum=1,
        meaning="a user's live keys expire this long after the user's last event",
    )  # fmt: skip
    definitions_file: Path | None = setting(
        "LIVE_DEFINITIONS_FILE", None, unit="path", default_text="live/definitions.yml",
        meaning="the live segments and triggers (yml; docs/live.md)",
    )  # fmt: skip
    trigger_max_age_seconds: float = setting(
        "LIVE_TRIGGER_MAX_AGE_SECONDS", 300.0, unit="seconds", minimum=1,
        meaning="a trigger entry older than this (by event time) is not posted: a replay of old files sends nothing",
    )  # fmt: skip
    api_host: str = setting("LIVE_API_HOST", "127.0.0.1", unit="address", meaning="where the profile API listens")
    api_port: int = setting("LIVE_API_PORT", 8091, unit="port", minimum=0, meaning="where the profile API listens")
    api_keys: dict[str, str] = setting(
        "LIVE_API_KEYS", DEV_WRITE_KEYS, unit="key:name,...", parse=parse_api_keys, secret=True,
        default_text="dev:dev (with a warning in the log)",
        meaning="the keys apps read profiles with (`Authorization: Bearer <key>`); the collector's write keys cannot",
    )  # fmt: skip
    traits_check_seconds: float = setting(
        "LIVE_TRAITS_CHECK_SECONDS", 30.0, unit="seconds", minimum=0,
        meaning="how often the consumer looks for a newly published serving copy to load the batch traits from",
    )  # fmt: skip


@dataclass(frozen=True)
class ServingSettings:
    """How fresh the published copy must be."""

    freshness_bound_minutes: float = setting(
        "FRESHNESS_BOUND_MINUTES", 1560.0, unit="minutes", minimum=0,
        meaning="freshness checks fail, and the dashboard warns, when a mart is older (a day plus two hours)",
    )  # fmt: skip


@dataclass(frozen=True)
class RefreshSettings:
    """How often the follow-up tier runs under steady traffic, and what dbt's DuckDB may use of the machine."""

    follow_up_every_minutes: float = setting(
        "FOLLOW_UP_EVERY_MINUTES", 10.0, unit="minutes", minimum=0,
        meaning="while events keep arriving, a follow-up run starts at most this often",
    )  # fmt: skip
    dbt_threads: int = setting(
        "DBT_THREADS", os.cpu_count() or 2, unit="threads", minimum=1, default_text="the machine's CPU count",
        meaning="dbt's threads (models built at once) and DuckDB's threads in dbt runs",
    )  # fmt: skip
    dbt_memory_limit: str = setting(
        "DBT_MEMORY_LIMIT", "75%", unit="DuckDB size",
        meaning="DuckDB's memory bound in dbt runs (a share of the machine's memory, or a size such as 4GB); "
        "past it DuckDB spills to disk",
    )  # fmt: skip


ENGINES = ("duckdb", "spark")
SPARK_METHODS = ("session", "thrift")


@dataclass(frozen=True)
class EngineSettings:
    """Which engine dbt builds the warehouse on, and how it reaches Spark (docs/spark.md)."""

    dbt_target: str = setting(
        "DBT_TARGET", "duckdb", unit="duckdb or spark",
        meaning="the engine dbt builds on (the target of dbt_project/profiles.yml): duckdb, the warehouse.duckdb "
        "file; spark, Parquet tables under $DATA_DIR/spark built by Apache Spark",
    )  # fmt: skip
    spark_method: str = setting(
        "SPARK_METHOD", "session", unit="session or thrift",
        meaning="session: Spark runs inside dbt's process (one machine, SPARK_MASTER); thrift: a cluster's Spark "
        "Thrift server at SPARK_HOST:SPARK_PORT",
    )  # fmt: skip
    spark_master: str = setting(
        "SPARK_MASTER", "local[2]", unit="Spark master URL",
        meaning="where a session-mode Spark runs its tasks (local[N]: N threads of this machine)",
    )  # fmt: skip
    spark_driver_memory: str = setting(
        "SPARK_DRIVER_MEMORY", "4g", unit="JVM size", meaning="heap of a session-mode Spark's driver (JVM size: 4g)"
    )
    spark_shuffle_partitions: int = setting(
        "SPARK_SHUFFLE_PARTITIONS", 4, unit="partitions", minimum=1,
        meaning="partitions of every shuffle (Spark's default of 200 suits a cluster, not local[2])",
    )  # fmt: skip
    spark_user_buckets: int = setting(
        "SPARK_USER_BUCKETS", 32, unit="partitions", minimum=1,
        meaning="partitions of the per-user tables on Spark, by a hash of user_id: a refresh rewrites the ones "
        "holding the users it recomputes (more: fewer rows rewritten for a small batch, more files)",
    )  # fmt: skip
    spark_host: str = setting(
        "SPARK_HOST", "", unit="host name", meaning="the Spark Thrift server (SPARK_METHOD=thrift)"
    )
    spark_port: int = setting("SPARK_PORT", 10000, unit="port", meaning="its port")
    pyspark_python: str = setting(
        "PYSPARK_PYTHON", "", unit="program", default_text="the Python running the pipeline",
        meaning="the Python Spark starts for marts.experiment_results' statistics (the project must be installed "
        "there, on every machine of a cluster)",
    )  # fmt: skip

    def check(self) -> EngineSettings:
        """The settings, after the checks that span two of them (raises SettingError)."""
        if self.dbt_target not in ENGINES:
            raise SettingError(f"DBT_TARGET must be one of {', '.join(ENGINES)}, got {self.dbt_target!r}")
        if self.spark_method not in SPARK_METHODS:
            raise SettingError(f"SPARK_METHOD must be one of {', '.join(SPARK_METHODS)}, got {self.spark_method!r}")
        if self.dbt_target == "spark" and self.spark_method == "thrift" and not self.spark_host:
            raise SettingError("SPARK_METHOD=thrift needs SPARK_HOST: the Spark Thrift server to build on")
        return self

    @property
    def on_spark(self) -> bool:
        return self.dbt_target == "spark"


@dataclass(frozen=True)
class CommandSettings:
    """Read by the Makefile and the tools it starts, not by the product's Python: listed for completeness."""

    python: str = setting("PYTHON", "python3", unit="program", meaning="the Python that `make` builds .venv with")
    dagster_home: str = setting(
        "DAGSTER_HOME", "", unit="path", default_text="$DATA_DIR/dagster_home",
        meaning="Dagster's run history and instance settings (make copies orchestration/dagster.yaml there)",
    )  # fmt: skip
    dashboard_port: int = setting("DASHBOARD_PORT", 8501, unit="port", meaning="where `make dashboard` listens")
    mlflow_port: int = setting("MLFLOW_PORT", 5000, unit="port", meaning="where `make dev` starts the MLflow UI")
    demo_users: int = setting("DEMO_USERS", 3000, unit="users", meaning="how many users `make demo` generates")
    demo_seed: int = setting("DEMO_SEED", 42, unit="seed", meaning="the random seed of `make demo`")


@dataclass(frozen=True)
class ToolSettings:
    """Programs the dashboard's browser test and screenshots drive."""

    chromium_binary: Path = setting(
        "CHROMIUM_BINARY", Path("/usr/bin/chromium"), unit="path", meaning="the Chromium the browser test drives"
    )
    chromedriver: Path = setting(
        "CHROMEDRIVER", Path("/usr/bin/chromedriver"), unit="path", meaning="the ChromeDriver beside it"
    )


SECTIONS: dict[str, type] = {
    "contract": ContractSettings,
    "ingest": IngestSettings,
    "gate": GateSettings,
    "collector": CollectorSettings,
    "activation": ActivationSettings,
    "live": LiveSettings,
    "ml": MLSettings,
    "quality": QualitySettings,
    "serving": ServingSettings,
    "refresh": RefreshSettings,
    "engine": EngineSettings,
    "privacy": PrivacySettings,
    "commands": CommandSettings,
    "tools": ToolSettings,
}


_DATA_DIR = Spec(
    "DATA_DIR", "path",
    "root of all runtime state: landing folder, warehouse, serving copy, MLflow, Dagster home (the Dagster resources "
    "hand it to dbt as the var data_dir)",
    default_text="data (under the working directory)",
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Every setting, read from the environment once (`from_env`) and handed to each package as its section."""

    data_dir: Path = field(metadata={"setting": _DATA_DIR})
    contract: ContractSettings
    ingest: IngestSettings
    gate: GateSettings
    collector: CollectorSettings
    activation: ActivationSettings
    live: LiveSettings
    ml: MLSettings
    quality: QualitySettings
    serving: ServingSettings
    refresh: RefreshSettings
    engine: EngineSettings
    privacy: PrivacySettings
    commands: CommandSettings
    tools: ToolSettings

    def dbt_vars(self) -> dict[str, str]:
        """The vars every dbt invocation gets, all read by dbt_project/profiles.yml: the warehouse's folder
        `data_dir` (dbt runs in the project folder, so a relative DATA_DIR would point somewhere else there),
        `threads` and `memory_limit` (DBT_THREADS, DBT_MEMORY_LIMIT), and on Spark how to reach it (SPARK_*,
        PYSPARK_PYTHON, by default the Python running this)."""
        values = {
            "data_dir": str(self.data_dir),
            "threads": str(self.refresh.dbt_threads),
            "memory_limit": self.refresh.dbt_memory_limit,
        }
        engine = self.engine
        if engine.on_spark:
            values |= {
                "spark_method": engine.spark_method,
                "spark_host": engine.spark_host or "NA",
                "spark_port": str(engine.spark_port),
                "spark_master": engine.spark_master,
                "spark_driver_memory": engine.spark_driver_memory,
                "spark_shuffle_partitions": str(engine.spark_shuffle_partitions),
                "spark_user_buckets": str(engine.spark_user_buckets),
                "pyspark_python": engine.pyspark_python or sys.executable,
            }
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every section from `environ` (default: this process's environment); raises SettingError naming the
        variable when a value cannot be used."""
        env = os.environ if environ is None else environ
        data_text = (env.get("DATA_DIR") or "").strip()
        data_dir = convert(_DATA_DIR, Path, data_text) if data_text else Path("data").expanduser().resolve()
        contract = read_section(ContractSettings, env)
        shared = {"future_tolerance_hours": contract.future_tolerance_hours, "min_event_time": contract.min_event_time}
        keys = (env.get("COLLECTOR_WRITE_KEYS") or "").strip()
        privacy = read_section(PrivacySettings, env, data_dir=data_dir).check()
        shared["privacy_section"] = privacy
        return cls(
            data_dir=data_dir,
            contract=contract,
            ingest=read_section(IngestSettings, env, data_dir=data_dir, **shared).check(),
            gate=read_section(GateSettings, env),
            collector=read_section(CollectorSettings, env, data_dir=data_dir, dev_key_warning=not keys, **shared),
            activation=read_section(ActivationSettings, env, export_dir=data_dir / "activation"),
            live=read_section(LiveSettings, env, data_dir=data_dir),
            ml=read_section(MLSettings, env, data_dir=data_dir),
            quality=read_section(QualitySettings, env),
            serving=read_section(ServingSettings, env),
            refresh=read_section(RefreshSettings, env),
            engine=read_section(EngineSettings, env).check(),
            privacy=privacy,
            commands=read_section(CommandSettings, env),
            tools=read_section(ToolSettings, env),
        )


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings.from_env(environ)`: for entry points no caller hands a settings object to (CLIs, the dashboard)."""
    return Settings.from_env(environ)
