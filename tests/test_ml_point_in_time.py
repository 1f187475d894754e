"""The ML feature marts on a hand-written event log: features worked out by hand, no leakage across a cutoff, and
the ML assets on data too small to train (they say why, write empty ml.* tables, and the marts still build)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ingestion import IngestSettings, ingest_landing
from orchestration.defs.ml.assets import (
    CHURN_MODEL_KEY,
    CLUSTER_MODEL_KEY,
    churn_model,
    churn_scores,
    cluster_model,
    model_metrics_table,
    user_clusters,
)
from orchestration.defs.ml.automation import churn_drift, cluster_drift
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import WarehouseResource
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow

AS_OF = "2026-03-31T12:00:00"  # pinned: the latest cutoff is 2026-03-01 00:00 (as_of's day - 30 days)
CUTOFF = "2026-03-01 00:00:00"
DBT_VARS = {"as_of": AS_OF}


def ev(message_id: str, user_id: str, timestamp: str, **fields: object) -> dict:
    return event(message_id, user_id, timestamp=timestamp, received_at=timestamp, **fields)


ORDER = {"event": "Order Completed", "properties": {"revenue": 40, "coupon": "SAVE10"}}
EVENTS = [
    # a: one visit on 02-20, one session of three events on 02-28 (10:00, 10:10, an order with a coupon at 10:15)
    ev("a1", "a", "2026-02-20T09:00:00Z"),
    ev("a2", "a", "2026-02-28T10:00:00Z"),
    ev("a3", "a", "2026-02-28T10:10:00Z", event="Feature Used"),
    ev("a4", "a", "2026-02-28T10:15:00Z", **ORDER),
    # b: a session that starts ten minutes before the cutoff
    ev("b1", "b", "2026-02-28T23:50:00Z"),
    # c sets as_of's neighbourhood: active on 03-31 only, so not in the 03-01 snapshot
    ev("c1", "c", "2026-03-31T12:00:00Z"),
]
# Late arrivals after the cutoff: b continues its session 10 minutes after it (the same 30-minute session in
# int_sessions), a comes back on 03-10. Both change the cutoff's labels, neither may change its features.
LATE = [ev("b2", "b", "2026-03-01T00:10:00Z"), ev("a5", "a", "2026-03-10T08:00:00Z")]

FEATURE_SQL = f"""
    select user_id, events_total, active_days_total, sessions_total, orders_total, revenue_total,
           coupon_order_share, feature_use_share, avg_session_minutes, events_per_session,
           round(recency_days, 6), round(tenure_days, 6), active_days_7, sessions_28, trend_7_28
    from marts.ml_churn_snapshots where cutoff_at = timestamp '{CUTOFF}' order by user_id
"""


def build(data_dir: Path) -> None:
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    run_dbt(
        data_dir,
        "run",
        "--select",
        "+ml_churn_snapshots",
        "+ml_user_features",
        "+ml_user_mix",
        "int_sessions",
        dbt_vars=DBT_VARS,
    )


@pytest.fixture(scope="module")
def warehouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("pit") / "data"
    write_lines(data_dir / "landing" / "events.jsonl", EVENTS)
    build(data_dir)
    return data_dir


def test_snapshot_features_by_hand_and_no_leakage_across_the_cutoff(warehouse_dir: Path):
    before = query(warehouse_dir, FEATURE_SQL)
    a, b = before
    # a: 4 events on 2 days in 2 sessions; 1 order of 40 with a coupon; 1 feature use in 4 events;
    # in-session time 10 + 5 minutes over 2 sessions; last event 13h45m and first 8d15h before the cutoff
    assert a == (
        "a",
        4,
        2,
        2,
        1,
        40.0,
        1.0,
        0.25,
        7.5,
        2.0,
        round(13.75 / 24, 6),
        round(8 + 15 / 24, 6),
        1,
        2,
        (1 + 1) / (2 * 7 / 28 + 1),
    )
    assert b[:5] == ("b", 1, 1, 1, 0) and b[10] == round(10 / 1440, 6)
    labels = query(
        warehouse_dir,
        f"select user_id, is_churned from marts.ml_churn_snapshots where cutoff_at = timestamp '{CUTOFF}' order by 1",
    )
    assert labels == [("a", True), ("b", True)]

    write_lines(warehouse_dir / "landing" / "late.jsonl", LATE)
    build(warehouse_dir)
    assert query(warehouse_dir, FEATURE_SQL) == before
    labels = query(
        warehouse_dir,
        f"select user_id, is_churned from marts.ml_churn_snapshots where cutoff_at = timestamp '{CUTOFF}' order by 1",
    )
    assert labels == [("a", False), ("b", False)]
    # int_sessions (named int_sessions_as_of while var as_of is pinned) merges b's two events into one session
    # across the cutoff; the features never saw b2
    sessions = query(warehouse_dir, "select events from intermediate.int_sessions_as_of where user_id = 'b'")
    assert sessions == [(2,)]


def test_too_little_data_skips_with_a_reason_and_still_builds_everything(warehouse_dir: Path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(warehouse_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = dg.materialize(
        [cluster_model, churn_model, user_clusters, churn_scores, model_metrics_table, cluster_drift, churn_drift],
        resources={"warehouse": WarehouseResource(data_dir=str(warehouse_dir)), "mlflow": MLflowResource()},
    )
    assert result.success
    metadata = {
        key: result.asset_materializations_for_node(node)[0].metadata
        for key, node in ((CLUSTER_MODEL_KEY, "ml__cluster_model"), (CHURN_MODEL_KEY, "ml__churn_model"))
    }
    [(users,)] = query(warehouse_dir, "select count(*) from marts.ml_user_features")
    reason = f"skipped: {users} users have activity; clustering needs 40"
    assert metadata[CLUSTER_MODEL_KEY]["reason"].value == reason
    assert "skipped: training snapshots" in metadata[CHURN_MODEL_KEY]["reason"].value
    assert metadata[CLUSTER_MODEL_KEY]["trained"].value is False
    scores = result.asset_materializations_for_node("ml__churn_scores")[0].metadata
    assert "no churn champion" in scores["skipped"].value
    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert all(evaluation.passed for evaluation in checks.values()) and len(checks) == 2
    for table in ("user_clusters", "churn_scores", "model_metrics"):
        assert query(warehouse_dir, f"select count(*) from ml.{table}") == [(0,)]
    # the marts that read ml.* build (empty) on top of them
    run_dbt(warehouse_dir, "build", "--select", "cluster_profiles", dbt_vars=DBT_VARS)
    assert query(warehouse_dir, "select count(*) from marts.cluster_profiles") == [(0,)]
