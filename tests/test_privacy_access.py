"""Right of access (privacy.access): one JSON file with exactly the subject's rows and entries, from a real warehouse
loaded from real landing files, activation exports and MLflow training features."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion import ingest_landing
from privacy import access
from privacy.access import export_user, held_ids
from settings import Settings, load
from stores.schema import ensure
from tests.conftest import event, write_lines


def _ev(message_id: str, user_id: str | None, anonymous_id: str, day: int) -> dict:
    when = f"2026-11-{day:02d}T10:00:00Z"
    return event(message_id, user_id, anonymous_id=anonymous_id, timestamp=when, received_at=when)


def build(data_dir: Path, **environ: str) -> Settings:
    """u1 signs in on device a1; u2 on device a2, which u1 uses later; u2 also signs in on a1 later."""
    settings = load({"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", **environ})
    write_lines(
        settings.ingest.landing_dir / "app/events.jsonl",
        [
            _ev("e1", "u1", "a1", 1),  # a1 first seen with u1: stitched to u1
            _ev("e2", None, "a1", 2),  # u1's, through a1
            _ev("e3", "u2", "a2", 1),  # a2 first seen with u2
            _ev("e4", "u1", "a2", 3),  # u1 on u2's device: u1's event (a2 stays u2's)
            _ev("e5", None, "a2", 4),  # u2's, through a2
            _ev("e6", "u2", "a1", 5),  # u2 on u1's device: u2's event
            _ev("e7", "u10", "a10", 1),  # another user whose id starts with u1
        ],
    )
    write_lines(
        settings.ingest.landing_dir / "bad.jsonl",
        ['{"message_id": "r1", "user_id": "u1", "type": "bogus"}', '{"message_id": "r2", "user_id": "u10"}'],
    )
    assert ingest_landing(settings.ingest).rows_loaded == 7
    with duckdb.connect(str(settings.ingest.warehouse_path)) as con:
        ensure(con, "ml.user_clusters", "activation.delivery_log")
        con.execute(
            "insert into ml.user_clusters values ('u1', 1, 'power', 0.9, 40, false, 'v1'), "
            "('u2', 2, 'casual', 0.1, 2, true, 'v1')"
        )
        con.execute(
            "insert into activation.delivery_log (delivery_key, audience, source_table, user_id, status) values "
            "('churn|u1|x', 'churn', 'marts.audience_churn_risk', 'u1', 'sent'), "
            "('churn|u2|x', 'churn', 'marts.audience_churn_risk', 'u2', 'sent')"
        )
    write_lines(
        data_dir / "activation/churn_risk/20261101.jsonl",
        [{"user_id": "u1", "entered_at": "2026-11-01"}, {"user_id": "u2", "entered_at": "2026-11-01"}],
    )
    write_lines(data_dir / "activation/kpi_alerts/20261101.jsonl", [{"kpi": "dau", "value": 3}])
    features = data_dir / "mlartifacts/1/run/artifacts/data/training_features.parquet"
    features.parent.mkdir(parents=True)
    table = pa.table(
        {
            "user_id": ["u1", "u2", "u10"],
            "revenue": pa.array([Decimal("1.50"), Decimal("2.00"), Decimal("0")], pa.decimal128(9, 2)),
            "as_of": [datetime(2026, 11, 1)] * 3,
        }
    )
    pq.write_table(table, features)
    return settings


def test_the_export_holds_exactly_the_subjects_data(data_dir, tmp_path):
    settings = build(data_dir)
    out = tmp_path / "exports" / "u1.json"
    report = export_user(settings, ["u1"], out)
    text = out.read_text()
    document = json.loads(text)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert document["subject"] == {"user_ids": ["u1"], "anonymous_ids": ["a1"]}  # a2 is u2's
    warehouse = document["warehouse"]
    assert sorted(row["message_id"] for row in warehouse["raw.events"]) == ["e1", "e2", "e4"]
    assert warehouse["raw.events"][0]["timestamp"].startswith("2026-11-")  # timestamps as ISO text
    assert [row["line_number"] for row in warehouse["raw.events_rejected"]] == [1]  # u1's line, not u10's
    assert [row["user_id"] for row in warehouse["ml.user_clusters"]] == ["u1"]
    assert [row["delivery_key"] for row in warehouse["activation.delivery_log"]] == ["churn|u1|x"]
    assert document["landing_files"] == [
        {"file": "app/events.jsonl", "present": True},
        {"file": "bad.jsonl", "present": True},
    ]
    assert document["activation_exports"] == {
        "activation/churn_risk/20261101.jsonl": [{"user_id": "u1", "entered_at": "2026-11-01"}]
    }
    (rows,) = document["training_features"].values()
    assert rows == [{"user_id": "u1", "revenue": "1.50", "as_of": "2026-11-01T00:00:00"}]
    # nothing of the other users (e4's anonymous id a2 is u1's own event)
    assert '"u2"' not in text and "u10" not in text and "e5" not in text and "e6" not in text
    assert report.counts["raw.events"] == 3 and report.counts["training features"] == 1
    summary = report.summary()
    assert str(out) in summary and "raw.events: 3" in summary and "activation exports: 1" in summary
    assert not list(out.parent.glob(".*.tmp"))


def test_pseudonymised_ids_are_mapped_before_searching(data_dir, tmp_path):
    settings = build(data_dir, PSEUDONYMISE_IDS="true", PRIVACY_KEY="k" * 40)
    mapping = held_ids(settings.privacy, ["u1"])
    assert mapping["u1"] != "u1" and len(mapping["u1"]) == 64
    rows = duckdb.connect(str(settings.ingest.warehouse_path), read_only=True)
    try:
        held = rows.execute("select count(*) from raw.events where user_id = ?", [mapping["u1"]]).fetchone()[0]
    finally:
        rows.close()
    if held == 0:  # pragma: no cover - ingestion without pseudonymisation
        pytest.skip("ingestion does not pseudonymise ids in this tree")
    out = tmp_path / "u1.json"
    export_user(settings, ["u1"], out)
    document = json.loads(out.read_text())
    assert document["pseudonyms"] == mapping
    assert document["subject"]["user_ids"] == sorted(["u1", mapping["u1"]])
    assert sorted(row["message_id"] for row in document["warehouse"]["raw.events"]) == ["e1", "e2", "e4"]


def test_too_many_rows_are_refused_and_nothing_is_written(data_dir, tmp_path, monkeypatch):
    settings = build(data_dir)
    monkeypatch.setattr(access, "MAX_ROWS_PER_TABLE", 2)
    out = tmp_path / "u1.json"
    with pytest.raises(ValueError, match=r"raw\.events: 3 rows .* bound of 2"):
        export_user(settings, ["u1"], out)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_no_warehouse_yet_gives_an_empty_export(data_dir, tmp_path):
    settings = load({"DATA_DIR": str(data_dir)})
    report = export_user(settings, ["u1"], tmp_path / "u1.json")
    document = json.loads((tmp_path / "u1.json").read_text())
    assert document["warehouse"] == {} and "raw.events" in report.not_found and report.total == 0


def test_the_cli_writes_the_file(data_dir, tmp_path, capsys):
    from privacy.cli import main

    build(data_dir)
    out = tmp_path / "cli.json"
    assert main(["export-user", "--users", "u1", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(row["message_id"] for row in json.loads(out.read_text())["warehouse"]["raw.events"]) == [
        "e1",
        "e2",
        "e4",
    ]
