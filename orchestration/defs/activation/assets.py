"""Audience entries and KPI alerts out of the warehouse (activation/), and a check that flags the alerts."""

from urllib.parse import urlsplit

import dagster as dg

from activation import ActivationReport, ActivationSettings, deliver_alerts, deliver_audiences
from ingestion.markup import Markdown, md_table, plain_text
from orchestration.defs.dbt.assets import DBT_MODEL_KEYS
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import FOLLOW_UP, LIVE, tier
from stores.schema import connect

AUDIENCE_KEYS = [key for key in DBT_MODEL_KEYS if key.path[0] == "marts" and key.path[-1].startswith("audience_")]
DELIVERIES = dg.AssetKey(["activation", "audience_deliveries"])
KPI_ALERTS = dg.AssetKey(["marts", "kpi_alerts"])
ALERT_DELIVERIES = dg.AssetKey(["activation", "kpi_alert_deliveries"])


def report_markdown(report: ActivationReport) -> str:
    """One line per audience: new entries, sent, failed, batches, attempts and the endpoint's last answer."""
    rows = []
    for name, a in sorted(report.audiences.items()):
        # the endpoint's answer is whatever it sent back: escaped and cut like client text
        answer = "" if a.last_status is None and not a.last_response else f"{a.last_status} {a.last_response or ''}"
        rows.append([name, a.new_entries, a.sent, a.failed, a.batches, a.attempts, answer])
    return md_table(
        ["audience", "new entries", "sent", "failed", "batches", "attempts", "last answer"],
        rows,
        align="lrrrrrl",
        max_chars=120,
    )


def webhook_metadata(settings: ActivationSettings) -> str:
    """Where deliveries go, without the URL's path or credentials (webhook URLs often embed a token)."""
    if settings.webhook_url:
        url = urlsplit(settings.webhook_url)
        return f"{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}/..."
    return "none: ACTIVATION_WEBHOOK_URL is unset, so entries are written as files only"


@dg.asset(
    key=DELIVERIES,
    deps=AUDIENCE_KEYS,
    group_name="activation",
    tags=tier(FOLLOW_UP),
    kinds={"python", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "webhook_accepted_every_batch",
            asset=DELIVERIES,
            description="Warns while deliveries wait for a retry because the endpoint did not accept them.",
        )
    ],
    description="New open entries of every marts.audience_* table exported as JSON lines under "
    "$DATA_DIR/activation/<audience>/ and POSTed (batched, signed, retried) to ACTIVATION_WEBHOOK_URL; "
    "activation.delivery_log keeps each delivery key once, so reruns and retries never send a user twice.",
)
def audience_deliveries(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = warehouse.settings().activation
    with connect(str(warehouse.warehouse_path)) as con:
        report = deliver_audiences(con, settings)
        logged = con.execute("select count(*) from activation.delivery_log").fetchone()[0]
    for name, a in sorted(report.audiences.items()):
        context.log.info(f"{plain_text(name)}: {a.new_entries} new, {a.sent} sent, {a.failed} failed")
    yield dg.MaterializeResult(
        metadata={
            "webhook": webhook_metadata(settings),
            "audiences": dg.MetadataValue.md(report_markdown(report)),
            "new_entries": sum(a.new_entries for a in report.audiences.values()),
            "sent": sum(a.sent for a in report.audiences.values()),
            "failed": report.failed,
            "export_dir": dg.MetadataValue.path(str(settings.export_dir)),
            "dagster/row_count": logged,
        }
    )
    yield dg.AssetCheckResult(
        check_name="webhook_accepted_every_batch",
        passed=report.failed == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed": report.failed, "webhook": webhook_metadata(settings)},
        description=None
        if report.failed == 0
        else f"{report.failed} deliveries not accepted; they stay pending and the next run retries them.",
    )


def latest_day_alerts(warehouse: WarehouseResource) -> tuple[object, list[dict]]:
    """The latest complete day (the one marts.kpi_alerts judges last) and its alert rows."""
    with connect(str(warehouse.warehouse_path), read_only=True) as con:
        cursor = con.execute(
            """
            with latest as (
                select case when date_diff('second', cast(as_of_date as timestamp), as_of_local) >= 86399
                            then as_of_date else as_of_date - 1 end as day
                from intermediate.int_as_of
            )
            select alerts.* from marts.kpi_alerts as alerts, latest
            where alerts.activity_date = latest.day order by alerts.kpi
            """
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        day = con.execute("select max(activity_date) from marts.daily_kpis").fetchone()[0]
    return (rows[0]["activity_date"] if rows else day), rows


def alerts_markdown(rows: list[dict]) -> str:
    cells = (
        [r["kpi"], Markdown(f"{r['value']:.1f}"), Markdown(f"{r['expected']:.1f}"),
         Markdown(f"{r['band_low']:.1f} .. {r['band_high']:.1f}"), r["direction"]]
        for r in rows
    )  # fmt: skip
    return md_table(["kpi", "value", "expected", "band", "direction"], cells, align="lrrll")


@dg.asset_check(
    asset=KPI_ALERTS,
    name="kpi_alerts_latest_day",
    pool=DUCKDB_WRITER_POOL,
    description="Warns when a KPI of the latest complete day lies outside its trailing band (marts.kpi_alerts); "
    "activation/kpi_alert_deliveries posts them.",
)
def kpi_alerts_latest_day(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    day, rows = latest_day_alerts(warehouse)
    if rows:
        context.log.warning(
            f"{len(rows)} KPI alert(s) on {day}: " + ", ".join(f"{r['kpi']} {r['direction']}" for r in rows)
        )
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "day": str(day),
            "alerts": len(rows),
            "table": dg.MetadataValue.md(alerts_markdown(rows) if rows else "no KPI outside its band"),
        },
        description=None
        if not rows
        else "; ".join(f"{r['kpi']} {r['value']:.0f} outside {r['band_low']:.0f}..{r['band_high']:.0f}" for r in rows),
    )


@dg.asset(
    key=ALERT_DELIVERIES,
    deps=[KPI_ALERTS],
    group_name="activation",
    tags=tier(LIVE),
    kinds={"python", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="The KPI alerts of the latest complete day (marts.kpi_alerts) exported under "
    "$DATA_DIR/activation/kpi_alerts/ and POSTed to ACTIVATION_WEBHOOK_URL, once each (delivery key "
    "kpi_alerts|kpi|day in activation.delivery_log).",
)
def kpi_alert_deliveries(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day, rows = latest_day_alerts(warehouse)
    settings = warehouse.settings().activation
    posted = 0
    if rows:
        with connect(str(warehouse.warehouse_path)) as con:
            report = deliver_alerts(con, settings, rows)
        posted = sum(a.sent for a in report.audiences.values())
        context.log.info(f"{len(rows)} KPI alert(s) on {day}, {posted} posted")
    return dg.MaterializeResult(
        metadata={"day": str(day), "alerts": len(rows), "posted": posted, "webhook": webhook_metadata(settings)}
    )
