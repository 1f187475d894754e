"""Deliver audience entries (and KPI alerts) once: files under $DATA_DIR/activation/, then a signed webhook.

Every item has a delivery key (audience|user_id|entered_at for an entry). activation.delivery_log holds one row per
key: a key is exported to a file once, and POSTed until the endpoint accepts it, then never again, so a retry or a
rerun never sends a user twice. activation.delivery_attempts holds one row per POST: when, which batch, how many
items, and what the endpoint answered.

Only open entries (exited_at is null) are new work. Items exported while no webhook was configured are logged as
files_only and stay delivered as files: configuring a webhook later sends what enters from then on, not a backlog.
A receiver that must never act twice can also dedupe on the Idempotency-Key header (the batch id, stable for the
same items) or on each entry's delivery_key: if the endpoint accepted a batch but its answer was lost, the next run
sends that batch again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from activation.webhook import PostResult, WebhookClient
from settings import ActivationSettings
from stores.schema import ensure

ALERTS = "kpi_alerts"


def webhook_client(settings: ActivationSettings) -> WebhookClient | None:
    """The webhook client, or None when no webhook is configured (files only)."""
    if not settings.webhook_url:
        return None
    return WebhookClient(
        settings.webhook_url,
        settings.secret or "",
        settings.timeout_seconds,
        settings.max_attempts,
        settings.backoff_seconds,
    )


@dataclass
class AudienceReport:
    """What one run did for one audience."""

    audience: str
    new_entries: int = 0
    exported_file: str | None = None
    sent: int = 0
    failed: int = 0
    batches: int = 0
    attempts: int = 0
    last_status: int | None = None
    last_response: str | None = None


@dataclass
class ActivationReport:
    """What one run did, per audience, and whether a webhook was configured."""

    webhook: str | None
    audiences: dict[str, AudienceReport] = field(default_factory=dict)

    def audience(self, name: str) -> AudienceReport:
        return self.audiences.setdefault(name, AudienceReport(name))

    @property
    def failed(self) -> int:
        return sum(a.failed for a in self.audiences.values())


def ensure_log(con: duckdb.DuckDBPyConnection) -> None:
    """Create the activation schema and its two tables when missing."""
    ensure(con, "activation")


def audience_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """marts.audience_* tables that have the audience columns (audience, user_id, entered_at, exited_at)."""
    rows = con.execute(
        """
        select table_name from information_schema.columns
        where table_schema = 'marts' and table_name like 'audience\\_%' escape '\\'
          and column_name in ('audience', 'user_id', 'entered_at', 'exited_at')
        group by table_name having count(*) = 4 order by table_name
        """
    ).fetchall()
    return [name for (name,) in rows]


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def new_entries(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """Open entries (exited_at is null) of marts.<table> whose delivery key is not in the log yet.

    Entries that have already ended are history, not triggers: a user who came back needs no re-engagement mail.
    """
    if table not in audience_tables(con):
        raise ValueError(f"marts.{table} is not an audience table (needs audience, user_id, entered_at, exited_at)")
    key = "entries.audience || '|' || entries.user_id || '|' || strftime(entries.entered_at, '%Y-%m-%dT%H:%M:%S.%fZ')"
    # table is one of audience_tables() (checked above); no value is spliced into the SQL
    cursor = con.execute(
        f"""
        select {key} as delivery_key, entries.*
        from marts.{table} as entries
        anti join activation.delivery_log as log on log.delivery_key = {key}
        where entries.exited_at is null
        order by entries.audience, entries.entered_at, entries.user_id
        """
    )
    names = [column[0] for column in cursor.description]
    return [{name: _jsonable(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)


def export_entries(entries: list[dict], export_dir: Path, audience: str, stamp: str) -> Path:
    """One JSON-lines file of new entries: <export_dir>/<audience>/<stamp>.jsonl, written atomically."""
    path = export_dir / audience / f"{stamp}.jsonl"
    _write_atomic(path, b"".join(orjson.dumps(entry) + b"\n" for entry in entries))
    return path


def record_new(
    con: duckdb.DuckDBPyConnection, entries: list[dict], table: str, path: Path | None, status: str, now: datetime
) -> None:
    """Log rows for newly exported items (status files_only without a webhook, pending with one), in one insert
    (a row-by-row executemany took 310 of the 314 s of a first delivery of 150,382 entries at 10M events)."""
    rows = pa.table(
        {
            "delivery_key": pa.array([e["delivery_key"] for e in entries], pa.string()),
            "audience": pa.array([e["audience"] for e in entries], pa.string()),
            "user_id": pa.array([e.get("user_id") for e in entries], pa.string()),
            # ISO-8601 text (_jsonable), cast as executemany's parameters were
            "entered_at": pa.array([e.get("entered_at") for e in entries], pa.string()),
        }
    )
    con.register("new_delivery_rows", rows)
    try:
        con.execute(
            """
            insert into activation.delivery_log
                (delivery_key, audience, source_table, user_id, entered_at, exported_file, exported_at, status)
            select delivery_key, audience, ?, user_id, cast(entered_at as timestamp), ?, ?, ?
            from new_delivery_rows
            """,
            [table, str(path) if path else None, now, status],
        )
    finally:
        con.unregister("new_delivery_rows")


def batch_id(keys: Iterable[str]) -> str:
    """Stable id of a batch: the same items give the same id (the Idempotency-Key a receiver can dedupe on)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return f"b_{digest[:24]}"


def _pending(con: duckdb.DuckDBPyConnection, sources: list[str] | None) -> dict[str, list[str]]:
    rows = con.execute(
        "select audience, delivery_key from activation.delivery_log "
        "where status in ('pending', 'failed') and (? is null or source_table in (select unnest(?))) "
        "order by audience, entered_at, delivery_key",
        [sources, sources or []],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for audience, key in rows:
        out.setdefault(audience, []).append(key)
    return out


def _payloads(con: duckdb.DuckDBPyConnection, keys: list[str]) -> list[dict]:
    """The exported records of `keys`, read back from their files (the file is what was decided to send)."""
    files = con.execute(
        "select distinct exported_file from activation.delivery_log where delivery_key in (select unnest(?))",
        [keys],
    ).fetchall()
    wanted, found = set(keys), {}
    for (name,) in files:
        for line in Path(name).read_bytes().splitlines():
            record = orjson.loads(line)
            if record["delivery_key"] in wanted:
                found[record["delivery_key"]] = record
    missing = wanted - set(found)
    if missing:
        raise FileNotFoundError(f"exported records missing for {len(missing)} deliveries, e.g. {sorted(missing)[0]}")
    return [found[key] for key in keys]


def record_post(con: duckdb.DuckDBPyConnection, audience: str, keys: list[str], batch: str, result: PostResult) -> None:
    """Write the attempts of one batch and the new state of its items, in one transaction."""
    last = result.last
    status = "sent" if result.ok else "failed"
    con.execute("begin transaction")
    try:
        con.executemany(
            "insert into activation.delivery_attempts values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (batch, audience, number + 1, a.attempted_at, len(keys), a.status, a.response, a.ok)
                for number, a in enumerate(result.attempts)
            ],
        )
        con.execute(
            """
            update activation.delivery_log set
                status = ?, attempts = attempts + ?, last_http_status = ?, last_response = ?,
                last_attempt_at = ?, batch_id = ?, sent_at = case when ? then ? else sent_at end
            where delivery_key in (select unnest(?))
            """,
            [
                status,
                len(result.attempts),
                last.status,
                last.response,
                last.attempted_at,
                batch,
                result.ok,
                last.attempted_at,
                keys,
            ],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def send_pending(
    con: duckdb.DuckDBPyConnection,
    settings: ActivationSettings,
    report: ActivationReport,
    sources: list[str] | None = None,
    client: WebhookClient | None = None,
) -> None:
    """POST every pending or failed item (of the `sources` tables, default all) in batches per audience; a failed
    batch stays failed and is retried by the next run."""
    client = client or webhook_client(settings)
    if client is None:
        return
    for audience, keys in _pending(con, sources).items():
        item = report.audience(audience)
        records = _payloads(con, keys)  # each export file read once per run, not once per batch
        for start in range(0, len(keys), settings.batch_size):
            chunk = keys[start : start + settings.batch_size]
            batch = batch_id(chunk)
            kind = "kpi_alerts" if audience == ALERTS else "audience_entries"
            entries = records[start : start + settings.batch_size]
            body = orjson.dumps({"type": kind, "audience": audience, "batch_id": batch, "entries": entries})
            result = client.post(body, batch)
            record_post(con, audience, chunk, batch, result)
            item.batches += 1
            item.attempts += len(result.attempts)
            item.last_status, item.last_response = result.last.status, result.last.response[:200]
            if result.ok:
                item.sent += len(chunk)
            else:
                item.failed += len(chunk)


def deliver_items(
    con: duckdb.DuckDBPyConnection,
    settings: ActivationSettings,
    items_by_source: dict[str, list[dict]],
    report: ActivationReport,
    now: datetime | None = None,
) -> None:
    """Export and log new items (each a dict with delivery_key and audience), grouped by source table."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    status = "pending" if settings.webhook_url else "files_only"
    for table, items in items_by_source.items():
        by_audience: dict[str, list[dict]] = {}
        for item in items:
            by_audience.setdefault(item["audience"], []).append(item)
        for audience, group in by_audience.items():
            path = export_entries(group, settings.export_dir, audience, stamp)
            record_new(con, group, table, path, status, now)
            entry = report.audience(audience)
            entry.new_entries += len(group)
            entry.exported_file = str(path)


def deliver_audiences(
    con: duckdb.DuckDBPyConnection,
    settings: ActivationSettings,
    tables: list[str] | None = None,
    client: WebhookClient | None = None,
) -> ActivationReport:
    """Export every audience's new open entries and send what is pending; see the module docstring."""
    ensure_log(con)
    report = ActivationReport(webhook=settings.webhook_url)
    tables = tables if tables is not None else audience_tables(con)
    for table in tables:
        for (audience,) in con.execute(f"select distinct audience from marts.{table} order by 1").fetchall():
            report.audience(audience)  # listed even when nothing is new
        entries = new_entries(con, table)
        if entries:
            deliver_items(con, settings, {table: entries}, report)
    send_pending(con, settings, report, tables, client)
    return report


def deliver_alerts(
    con: duckdb.DuckDBPyConnection,
    settings: ActivationSettings,
    alerts: list[dict],
    client: WebhookClient | None = None,
) -> ActivationReport:
    """Export and POST KPI alerts (rows of marts.kpi_alerts) once each, keyed kpi_alerts|kpi|activity_date."""
    ensure_log(con)
    report = ActivationReport(webhook=settings.webhook_url)
    items = [
        {
            "delivery_key": f"{ALERTS}|{a['kpi']}|{_jsonable(a['activity_date'])}",
            "audience": ALERTS,
            **{k: _jsonable(v) for k, v in a.items()},
        }
        for a in alerts
    ]
    known = {
        key
        for (key,) in con.execute(
            "select delivery_key from activation.delivery_log where delivery_key in (select unnest(?))",
            [[item["delivery_key"] for item in items]],
        ).fetchall()
    }
    fresh = [item for item in items if item["delivery_key"] not in known]
    if fresh:
        deliver_items(con, settings, {ALERTS: fresh}, report)
    send_pending(con, settings, report, [ALERTS], client)
    return report
