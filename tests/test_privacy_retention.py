"""Expiry of old raw data (privacy.retention) on real landing files ingested into a real warehouse, at a pinned
time: which rows and files go, which stay, and that an expired file is never loaded again."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion import ingest_landing
from orchestration.defs.privacy.retention import expire_raw_data, expire_schedule
from orchestration.defs.resources import warehouse_resource
from privacy.retention import expire
from settings import Settings, load
from tests.conftest import event, query, write_lines

NOW = datetime(2026, 12, 1, tzinfo=UTC)  # retention 30 days: the cutoff is 2026-11-01
DAY = timedelta(days=1)


def _ev(message_id: str, when: datetime, user_id: str = "u1") -> dict:
    text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event(message_id, user_id, timestamp=text, received_at=text)


def _settings(data_dir: Path, days: str = "30") -> Settings:
    return load({"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", "RAW_RETENTION_DAYS": days})


def _file(landing: Path, name: str, lines: list, modified: datetime) -> Path:
    path = write_lines(landing / name, lines)
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


def _loaded_at(data_dir: Path, name: str, when: datetime) -> None:
    """Pretend the file was loaded at `when` (ingestion stamps the real time)."""
    naive = when.astimezone(UTC).replace(tzinfo=None)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("update raw.events set loaded_at = ? where source_file = ?", [naive, name])
        con.execute("update raw.events_rejected set rejected_at = ? where source_file = ?", [naive, name])
        con.execute("update raw.load_manifest set loaded_at = ? where file_name = ?", [naive, name])


def build(data_dir: Path, now: datetime) -> Settings:
    """Landing files loaded at chosen times around now - 30 days (see the expected figures in the tests)."""
    settings = _settings(data_dir)
    landing = settings.ingest.landing_dir
    old, recent = now - 61 * DAY, now - 11 * DAY
    _file(landing, "old.jsonl", [*(_ev(f"m{i}", old) for i in (1, 2, 3)), _ev("m4", now - 16 * DAY), "bad"], old)
    _file(landing, "collector/old2.jsonl", [_ev("m5", old), _ev("m6", old)], old)
    _file(landing, "touched.jsonl", [_ev("m7", old), _ev("m8", old)], recent)  # modified after the cutoff
    _file(landing, "late.jsonl", [_ev("m9", now - 91 * DAY), _ev("m10", now - 91 * DAY), "bad"], old)
    _file(landing, "held.jsonl", [_ev("m11", old)], old)  # its batch failed the gate
    _file(landing, "notes.txt", ["not an event file"], old)  # unsupported: never read
    _file(landing, ".hidden.jsonl", [_ev("m12", old)], old)  # a dot-file: never loaded
    (landing / "link.jsonl").symlink_to(landing / "old.jsonl")
    summary = ingest_landing(settings.ingest)
    assert sorted(f.file_name for f in summary.files) == [
        "collector/old2.jsonl", "held.jsonl", "late.jsonl", "notes.txt", "old.jsonl", "touched.jsonl",
    ]  # fmt: skip
    for name in ("old.jsonl", "collector/old2.jsonl", "touched.jsonl", "held.jsonl", "notes.txt"):
        _loaded_at(data_dir, name, now - 60 * DAY)
    _loaded_at(data_dir, "late.jsonl", now - 6 * DAY)  # a late delivery of old events
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("update raw.load_manifest set gate_status = 'quarantined' where file_name = 'held.jsonl'")
    return settings


def _message_ids(data_dir: Path) -> list[str]:
    return [row[0] for row in query(data_dir, "select message_id from raw.events order by source_line, 1")]


def _statuses(data_dir: Path) -> dict[str, str]:
    return dict(query(data_dir, "select file_name, status from raw.load_manifest"))


def test_expiry_deletes_what_was_loaded_and_dated_before_the_cutoff_and_keeps_the_rest(data_dir):
    settings = build(data_dir, NOW)
    landing = settings.ingest.landing_dir
    sizes = {name: (landing / name).stat().st_size for name in ("old.jsonl", "collector/old2.jsonl")}
    report = expire(settings, now=NOW)
    # m1-m3 (old.jsonl), m5-m6 (old2), m7-m8 (touched: the file's time does not keep its rows)
    assert (report.events_deleted, report.rejected_deleted) == (7, 1)
    # m4 is dated after the cutoff, m9-m10 were loaded after it, m11's file is held by the gate
    assert sorted(_message_ids(data_dir)) == ["m10", "m11", "m4", "m9"]
    assert query(data_dir, "select source_file from raw.events_rejected") == [("late.jsonl",)]
    assert sorted(report.files_deleted) == ["collector/old2.jsonl", "old.jsonl"]
    assert report.bytes_freed == sum(sizes.values())
    left = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file() or p.is_symlink())
    assert left == [".hidden.jsonl", "held.jsonl", "late.jsonl", "link.jsonl", "notes.txt", "touched.jsonl"]
    assert (landing / "link.jsonl").is_symlink()
    statuses = _statuses(data_dir)
    assert statuses == {
        "old.jsonl": "expired", "collector/old2.jsonl": "expired", "touched.jsonl": "loaded", "late.jsonl": "loaded",
        "held.jsonl": "loaded", "notes.txt": "unsupported",
    }  # fmt: skip
    (detail,) = query(data_dir, "select detail from raw.load_manifest where file_name = 'old.jsonl'")[0]
    assert detail.startswith("landing file deleted by retention at 2026-12-01 00:00:00 UTC (RAW_RETENTION_DAYS=30)")
    assert "it was loaded" in detail
    assert report.manifest_rows_expired == 2
    summary = report.summary()
    assert "raw.events: 7 rows deleted" in summary and "2 deleted" in summary and "--full-refresh" in summary
    # a second run finds nothing more
    again = expire(settings, now=NOW)
    assert (again.events_deleted, again.rejected_deleted, again.files_deleted) == (0, 0, [])


def test_retention_zero_keeps_everything_and_says_so(data_dir):
    settings = build(data_dir, NOW)
    before = (_message_ids(data_dir), query(data_dir, "select * from raw.load_manifest order by 1"))
    files = sorted(p.name for p in settings.ingest.landing_dir.rglob("*"))
    report = expire(replace(settings, privacy=replace(settings.privacy, retention_days=0)), now=NOW)
    assert report.figures()["raw_events_deleted"] == 0 and report.files_deleted == []
    assert "kept for ever" in report.summary()
    assert (_message_ids(data_dir), query(data_dir, "select * from raw.load_manifest order by 1")) == before
    assert sorted(p.name for p in settings.ingest.landing_dir.rglob("*")) == files


def test_an_expired_file_copied_back_is_never_loaded_again(data_dir):
    settings = build(data_dir, NOW)
    landing = settings.ingest.landing_dir
    original = (landing / "old.jsonl").read_bytes()
    modified = (landing / "old.jsonl").stat().st_mtime
    expire(settings, now=NOW)
    rows = _message_ids(data_dir)
    # back with the same name, size and time
    (landing / "old.jsonl").write_bytes(original)
    os.utime(landing / "old.jsonl", (modified, modified))
    assert ingest_landing(settings.ingest).files == []
    # and touched (a copy without -p): known by name and content
    os.utime(landing / "old.jsonl")
    assert ingest_landing(settings.ingest).files == []
    assert _message_ids(data_dir) == rows
    assert _statuses(data_dir)["old.jsonl"] == "expired"
    # still recent by its time: it stays; once old, the next expiry deletes it again
    assert expire(settings, now=NOW).files_deleted == []
    later = expire(settings, now=datetime.now(UTC) + 31 * DAY)
    assert "old.jsonl" in later.files_deleted and not (landing / "old.jsonl").exists()
    assert _statuses(data_dir)["old.jsonl"] == "expired"


def test_no_warehouse_yet_is_nothing_to_do(data_dir):
    report = expire(_settings(data_dir), now=NOW)
    assert not report.warehouse_found and "nothing to expire" in report.summary()
    assert not (data_dir / "warehouse.duckdb").exists()


def test_the_cli_prints_the_report(data_dir, monkeypatch, capsys):
    from privacy.cli import main

    build(data_dir, datetime.now(UTC))
    monkeypatch.setenv("RAW_RETENTION_DAYS", "30")
    assert main(["expire"]) == 0
    assert "raw.events: 7 rows deleted" in capsys.readouterr().out


@pytest.mark.slow
def test_the_daily_job_expires_with_the_resources_settings(data_dir):
    build(data_dir, datetime.now(UTC))
    assert (expire_schedule.cron_schedule, expire_schedule.execution_timezone) == ("30 2 * * *", "UTC")
    assert expire_raw_data.graph.node_dict["expire_raw"].definition.pool == "duckdb_writer"
    resources = {"warehouse": warehouse_resource(data_dir=str(data_dir), raw_retention_days="30")}
    result = expire_raw_data.execute_in_process(resources=resources)
    figures = result.output_for_node("expire_raw")
    assert (figures["raw_events_deleted"], figures["raw_events_rejected_deleted"]) == (7, 1)
    assert figures["landing_files_deleted"] == 2
    assert sorted(_message_ids(data_dir)) == ["m10", "m11", "m4", "m9"]
    # the default (0) keeps everything
    resources["warehouse"] = warehouse_resource(data_dir=str(data_dir))
    assert expire_raw_data.execute_in_process(resources=resources).output_for_node("expire_raw") == {
        "retention_days": 0, "raw_events_deleted": 0, "raw_events_rejected_deleted": 0, "landing_files_deleted": 0,
        "bytes_freed": 0, "manifest_rows_expired": 0,
    }  # fmt: skip
