"""Audiences, KPI alerts and their delivery: real dbt builds on a hand-written log, a real HTTP endpoint on loopback
that fails sometimes, and real Dagster runs of the delivery asset and the alert check."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from activation import SIGNATURE_HEADER, sign, verify_signature
from activation.webhook import WebhookClient
from ingestion import IngestSettings, ingest_landing
from orchestration.defs.activation.assets import audience_deliveries, kpi_alert_deliveries, kpi_alerts_latest_day
from orchestration.defs.resources import warehouse_resource
from tests.activation_log import AS_OF, CART_ABANDONMENT, REENGAGEMENT, SPIKE_DAY, activity_log
from tests.conftest import query, run_dbt, write_lines

pytestmark = pytest.mark.slow

SECRET = "s3cret-for-tests"
MODELS = ["+audience_reengagement", "+audience_cart_abandonment", "+audience_churn_risk", "+audience_segments",
          "+kpi_alerts"]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log loaded and the audiences and alerts built (with everything upstream of them)."""
    data_dir = tmp_path_factory.mktemp("activation") / "data"
    write_lines(data_dir / "landing" / "events.jsonl", activity_log())
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "build", "--select", *MODELS)
    return data_dir


def copy_of(source: Path, target: Path) -> Path:
    """A private copy of the warehouse (and dbt's parse state, so that dbt can parse partially there)."""
    target.mkdir(parents=True)
    shutil.copy(source / "warehouse.duckdb", target / "warehouse.duckdb")
    shutil.copytree(source / "dbt_target", target / "dbt_target")
    return target


# -- a webhook receiver that fails sometimes --------------------------------------------------------------------


class Receiver:
    """Accepts signed JSON batches; `plan(n)` gives the status of the n-th request (200 records the entries)."""

    def __init__(self, plan: Callable[[int], int]) -> None:
        self.plan = plan
        self.requests = 0
        self.statuses: list[int] = []
        self.accepted: Counter[str] = Counter()
        self.by_audience: Counter[str] = Counter()
        self.bad_signatures = 0
        self.idempotency_keys: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if not verify_signature(body, self.headers.get(SIGNATURE_HEADER), SECRET):
                    receiver.bad_signatures += 1
                    status = 401
                else:
                    status = receiver.plan(receiver.requests)
                if status == 200:
                    payload = json.loads(body)
                    receiver.idempotency_keys.append(self.headers["Idempotency-Key"])
                    for entry in payload.get("entries", []):
                        receiver.accepted[entry["delivery_key"]] += 1
                        receiver.by_audience[payload.get("audience", "")] += 1
                receiver.statuses.append(status)
                answer = b'{"ok":true}' if status == 200 else b'{"error":"try later"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(lambda n: 500 if n % 3 == 2 else 200)  # every third request fails
    yield server
    server.close()


@pytest.fixture
def webhook_env(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    monkeypatch.setenv("ACTIVATION_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ACTIVATION_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ACTIVATION_BATCH_SIZE", "2")
    monkeypatch.setenv("ACTIVATION_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("ACTIVATION_BACKOFF_SECONDS", "0.01")
    return receiver


def materialize(data_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize([audience_deliveries], resources={"warehouse": warehouse_resource(data_dir=str(data_dir))})


def open_entry_keys(data_dir: Path) -> Counter[str]:
    """Delivery keys of every open entry of every audience, computed here from the marts."""
    keys: Counter[str] = Counter()
    for table in ("audience_reengagement", "audience_cart_abandonment", "audience_churn_risk", "audience_segments"):
        for audience, user, entered in query(
            data_dir, f"select audience, user_id, entered_at from marts.{table} where exited_at is null"
        ):
            keys[f"{audience}|{user}|{entered.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z"] += 1
    return keys


def score(data_dir: Path, scored_at: datetime, scores: dict[str, float]) -> None:
    """Replace ml.churn_scores as the churn model would, then rebuild the churn audience (incremental)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("delete from ml.churn_scores")
        con.executemany(
            "insert into ml.churn_scores values (?, ?, ?, ?, 'v1')",
            [(user, p, "high" if p >= 0.6 else "low", scored_at) for user, p in scores.items()],
        )
    run_dbt(data_dir, "run", "--select", "audience_churn_risk")


# -- audiences ---------------------------------------------------------------------------------------------------


def test_reengagement_fires_once_per_inactivity_gap(built):
    rows = query(built, "select user_id, entered_at, exited_at from marts.audience_reengagement "
                                 "where user_id in ('r1', 'r2')")  # fmt: skip
    assert set(rows) == REENGAGEMENT  # r2 is never away for 14 days


def test_cart_abandonment_enters_once_per_cart_and_leaves_with_the_order(built):
    rows = query(built, "select user_id, entered_at, exited_at from marts.audience_cart_abandonment")
    assert set(rows) == CART_ABANDONMENT  # k1 ordered within 24 h, k3's cart is too young


def test_segment_audiences_hold_the_segments_members_from_as_of(built):
    rows = query(built, "select audience, user_id, entered_at, exited_at from marts.audience_segments")
    lapsed = {u for (u,) in query(built, "select user_id from marts.user_segments where is_lapsed")}
    assert "s1" in lapsed
    assert {u for a, u, _, _ in rows if a == "segment_lapsed"} == lapsed
    frequent = {u for (u,) in query(built, "select user_id from marts.user_segments where is_high_frequency")}
    assert {u for a, u, _, _ in rows if a == "segment_high_frequency"} == frequent
    assert {(entered, exited) for _, _, entered, exited in rows} == {(AS_OF, None)}


# -- KPI alerts ----------------------------------------------------------------------------------------------------


def test_kpi_alert_fires_on_the_injected_spike_with_a_hand_computed_band(built):
    kpis = pd.DataFrame(query(built, "select activity_date, dau from marts.daily_kpis order by 1"),
                        columns=["activity_date", "dau"])  # fmt: skip
    trailing = kpis["dau"].astype(float).shift(1).rolling(28)
    kpis["expected"], kpis["sd"] = trailing.mean(), trailing.std(ddof=1)
    spike = kpis[kpis["activity_date"] == SPIKE_DAY.date()].iloc[0]
    assert spike["dau"] == 49  # 7 regulars, r2, k3 and 40 one-day visitors
    row = query(built, "select value, expected, band_low, band_high, direction from marts.kpi_alerts "
                                "where kpi = 'dau' and activity_date = ?", [SPIKE_DAY.date()])  # fmt: skip
    assert row == [(49.0, pytest.approx(spike["expected"]), pytest.approx(spike["expected"] - 3 * spike["sd"]),
                    pytest.approx(spike["expected"] + 3 * spike["sd"]), "up")]  # fmt: skip
    # the regular days in the weeks before it stay inside their band
    assert query(built, "select count(*) from marts.kpi_alerts where kpi = 'dau' and activity_date "
                                 "between date '2026-02-01' and date '2026-02-14'") == [(0,)]  # fmt: skip


def test_alert_check_warns_and_the_delivery_asset_posts_the_latest_days_alerts_once(built, tmp_path, webhook_env):
    receiver = webhook_env
    data_dir = copy_of(built, tmp_path / "data")
    warehouse = warehouse_resource(data_dir=str(data_dir))
    result = kpi_alerts_latest_day(dg.build_asset_check_context(resources={"warehouse": warehouse}))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["day"].value == "2026-02-20"
    assert receiver.accepted == {}  # the check only checks: posting is the delivery asset's job

    def posted() -> int:
        run = dg.materialize([kpi_alert_deliveries], resources={"warehouse": warehouse})
        return run.get_asset_materialization_events()[0].materialization.metadata["posted"].value

    first = posted()
    kpis = {key.split("|")[1] for key in receiver.accepted}
    assert "dau" in kpis and first == len(receiver.accepted)
    assert all(key.endswith("|2026-02-20") for key in receiver.accepted)
    assert posted() == 0
    assert set(receiver.accepted.values()) == {1}


# -- delivery ------------------------------------------------------------------------------------------------------


def test_each_audience_reaches_the_endpoint_exactly_once_across_a_rerun_and_a_failed_delivery(
    built, tmp_path, webhook_env
):
    receiver = webhook_env
    data_dir = copy_of(built, tmp_path / "data")
    expected = open_entry_keys(data_dir)
    assert set(expected.values()) == {1} and len(expected) >= 8

    first = materialize(data_dir)
    assert first.success
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert (meta["sent"].value, meta["failed"].value) == (len(expected), 0)
    assert 500 in receiver.statuses  # some requests failed and were retried
    assert receiver.accepted == expected
    audiences = {key.split("|")[0] for key in expected}
    assert {"reengagement", "cart_abandonment", "segment_at_risk_customers"} <= audiences

    requests = receiver.requests
    rerun = materialize(data_dir)
    rerun_meta = rerun.get_asset_materialization_events()[0].materialization.metadata
    assert (rerun_meta["new_entries"].value, rerun_meta["sent"].value) == (0, 0)
    assert receiver.requests == requests

    # the churn model scores users: r1 and b0 enter; the endpoint is down, so their deliveries fail and are logged
    t1, t2 = datetime(2026, 2, 21), datetime(2026, 2, 22)
    score(data_dir, t1, {"r1": 0.8, "k2": 0.3, "b0": 0.7})
    receiver.plan = lambda n: 503
    down = materialize(data_dir)
    assert down.success
    check = down.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failed"].value == 2
    failed = query(data_dir, "select status, last_http_status, attempts from activation.delivery_log "
                             "where audience = 'churn_risk'")  # fmt: skip
    assert failed == [("failed", 503, 3)] * 2  # one batch, 3 attempts
    assert query(data_dir, "select count(*) from activation.delivery_attempts where audience = 'churn_risk' "
                           "and http_status = 503") == [(3,)]  # fmt: skip
    assert receiver.accepted == expected

    # rescored: r1 drops out, k2 enters, b0 stays (no second entry); the endpoint is back (failing sometimes)
    score(data_dir, t2, {"r1": 0.2, "k2": 0.9, "b0": 0.75})
    churn = query(data_dir, "select user_id, entered_at, exited_at from marts.audience_churn_risk order by 1")
    assert churn == [("b0", t1, None), ("k2", t2, None), ("r1", t1, t2)]
    receiver.plan = lambda n: 500 if n % 3 == 2 else 200
    recovered = materialize(data_dir)
    assert recovered.get_asset_check_evaluations()[0].passed
    # every open entry of every audience exactly once, and r1's entry, failed while it was open, once too
    assert receiver.accepted == open_entry_keys(data_dir) + Counter(["churn_risk|r1|2026-02-21T00:00:00.000000Z"])
    assert receiver.by_audience["churn_risk"] == 3
    assert receiver.bad_signatures == 0
    assert query(data_dir, "select count(*) from activation.delivery_log where status <> 'sent'") == [(0,)]


def test_without_a_webhook_entries_go_to_files_only(built, tmp_path, monkeypatch):
    monkeypatch.delenv("ACTIVATION_WEBHOOK_URL", raising=False)
    data_dir = copy_of(built, tmp_path / "data")
    result = materialize(data_dir)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert "files only" in meta["webhook"].value
    exported = Counter()
    for path in (data_dir / "activation").rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert path.parent.name == record["audience"]
            exported[record["delivery_key"]] += 1
    assert exported == open_entry_keys(data_dir)
    assert query(data_dir, "select distinct status from activation.delivery_log") == [("files_only",)]
    again = materialize(data_dir).get_asset_materialization_events()[0].materialization.metadata
    assert again["new_entries"].value == 0


def test_signature_verifies_and_rejects_tampering():
    body = b'{"entries":[]}'
    header = sign(body, SECRET, 1_700_000_000)
    assert verify_signature(body, header, SECRET, now=1_700_000_100)
    assert not verify_signature(body + b" ", header, SECRET, now=1_700_000_100)
    assert not verify_signature(body, header, "another secret", now=1_700_000_100)
    assert not verify_signature(body, header, SECRET, now=1_700_000_000 + 3600)  # a replay an hour later
    assert not verify_signature(body, "t=abc,v1=00", SECRET) and not verify_signature(body, None, SECRET)


def test_client_backs_off_exponentially_and_stops_on_a_client_error():
    waits: list[float] = []
    server = Receiver(lambda n: 503 if n < 4 else 200)
    try:
        client = WebhookClient(server.url, SECRET, max_attempts=5, backoff_seconds=0.5, sleep=waits.append)
        result = client.post(b'{"entries":[]}', "k")
        assert result.ok and [a.status for a in result.attempts] == [503, 503, 503, 200]
        assert waits == [0.5, 1.0, 2.0]
        server.plan = lambda n: 400
        rejected = client.post(b'{"entries":[]}', "k")
        assert not rejected.ok and len(rejected.attempts) == 1 and rejected.last.status == 400
    finally:
        server.close()
    with pytest.raises(ValueError, match="shared secret"):
        WebhookClient(server.url, "")
