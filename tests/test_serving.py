"""The published copy: atomic swap under an open reader, Parquet exports, the SQL shell, and the landing sensor."""

from __future__ import annotations

import json
import threading

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from orchestration.defs.refresh.automation import (
    follow_up_after_refresh,
    follow_up_decision,
    landing_folder_sensor,
    new_landing_files,
    run_in_progress,
)
from serving import publish
from serving.shell import run
from stores.schema import connect, ensure
from tests.conftest import event, sensor_context, write_lines


def build_warehouse(path, rows: int) -> None:
    with connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists ml")
        con.execute(f"create or replace table marts.daily_kpis as select range as day from range({rows})")
        con.execute("create or replace table ml.churn_scores as select 'u1' as user_id, 0.5 as churn_probability")
        con.execute("create schema if not exists staging")
        con.execute("create or replace table staging.not_published as select 1 as x")


def test_publish_swaps_in_a_whole_copy_while_a_reader_keeps_the_old_one(data_dir):
    warehouse, serving, exports = data_dir / "warehouse.duckdb", data_dir / "serving.duckdb", data_dir / "exports"
    build_warehouse(warehouse, 10)
    with connect(str(warehouse)) as con:
        first = publish(con, serving, exports)
    assert first.tables == {"marts.daily_kpis": 10, "ml.churn_scores": 1}

    analyst = duckdb.connect(str(serving), read_only=True)  # held open through the next publish
    assert analyst.execute("select count(*) from marts.daily_kpis").fetchone() == (10,)
    build_warehouse(warehouse, 25)
    errors: list[BaseException] = []

    def publish_again() -> None:
        try:
            with connect(str(warehouse)) as con:
                publish(con, serving, exports)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    worker = threading.Thread(target=publish_again)
    worker.start()
    worker.join(timeout=60)
    assert errors == []
    # the open connection still sees the complete old copy, without an error
    assert analyst.execute("select count(*) from marts.daily_kpis").fetchone() == (10,)
    analyst.close()
    with duckdb.connect(str(serving), read_only=True) as fresh:
        assert fresh.execute("select count(*) from marts.daily_kpis").fetchone() == (25,)
        assert fresh.execute("select tables from meta.publish").fetchone() == (2,)
        schemas = {row[0] for row in fresh.execute("select schema_name from duckdb_tables()").fetchall()}
    assert schemas == {"marts", "ml", "meta"}  # staging is not published
    assert pq.read_table(exports / "marts" / "daily_kpis.parquet").num_rows == 25
    # both names are symlinks into the version folder of the latest publish
    assert serving.resolve().parent == exports.resolve().parent == (data_dir / "published" / "current").resolve()
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".")) == []  # no temporary leftovers


def test_the_shell_runs_statements_read_only(data_dir):
    build_warehouse(data_dir / "warehouse.duckdb", 3)
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        publish(con, data_dir / "serving.duckdb", data_dir / "exports")
    assert "3" in run("select count(*) as n from marts.daily_kpis", data_dir / "serving.duckdb")
    try:
        run("create table marts.x as select 1", data_dir / "serving.duckdb")
    except duckdb.Error as error:
        assert "read-only" in str(error)
    else:
        raise AssertionError("the shell must not write")


def test_the_sensor_batches_new_complete_files_and_remembers_them(settings, data_dir, monkeypatch):
    monkeypatch.setenv("SETTLE_SECONDS", "5")
    landing = data_dir / "landing"
    for n in range(3):
        write_lines(landing / f"small_{n}.jsonl", [event(f"m{n}")])
    write_lines(landing / "upload.jsonl.part", [event("p")])

    with dg.instance_for_test() as instance:
        first = landing_folder_sensor(sensor_context(instance=instance))
        assert isinstance(first, dg.RunRequest)  # one run for the three files
        assert first.tags["landing/new_files"] == "3"
        new, cursor = new_landing_files(None, settings)
        assert new == ["small_0.jsonl", "small_1.jsonl", "small_2.jsonl"]

        again = landing_folder_sensor(sensor_context(instance=instance, cursor=cursor))
        assert isinstance(again, dg.SkipReason) and "1 still being written" in again.skip_message

        write_lines(landing / "small_3.jsonl", [event("m3")])
        later = landing_folder_sensor(sensor_context(instance=instance, cursor=cursor))
        assert isinstance(later, dg.RunRequest) and later.tags == {
            "landing/new_files": "1", "landing/first": "small_3.jsonl",
        }  # fmt: skip
        assert later.run_key != first.run_key


def test_new_files_wait_until_no_refresh_is_in_progress(settings, data_dir):
    write_lines(data_dir / "landing" / "a.jsonl", [event("a")])
    with dg.instance_for_test() as instance:
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
            refresh = dg.DagsterRun(job_name="landing_refresh", status=status)
            instance.add_run(refresh)
            waiting = landing_folder_sensor(sensor_context(instance=instance))
            assert isinstance(waiting, dg.SkipReason)
            assert f"1 new file(s) wait for refresh {refresh.run_id[:8]}" in waiting.skip_message
            instance.report_run_canceled(refresh)

        # a follow-up run does not hold a refresh back (the refresh outranks it for the writer)
        instance.add_run(dg.DagsterRun(job_name="refresh_follow_up", status=dg.DagsterRunStatus.STARTED))
        assert isinstance(landing_folder_sensor(sensor_context(instance=instance)), dg.RunRequest)


def test_a_failed_refresh_that_dagster_will_retry_holds_new_files_until_the_retry_is_launched(settings, data_dir):
    write_lines(data_dir / "landing" / "a.jsonl", [event("a")])
    with dg.instance_for_test() as instance:
        # what orchestration.recover leaves: failed, and tagged by the instance for a retry not launched yet
        failed = _run(instance, "landing_refresh", dg.DagsterRunStatus.FAILURE, {"dagster/will_retry": "true"})
        ended = instance.get_run_record_by_id(failed.run_id).update_timestamp.timestamp()
        waiting = landing_folder_sensor(sensor_context(instance=instance))
        assert f"wait for refresh {failed.run_id[:8]}, in progress or about to be retried" in waiting.skip_message
        # a retry that never comes holds them for a minute at most
        assert run_in_progress(instance, "landing_refresh", now=ended + 59) == failed.run_id
        assert run_in_progress(instance, "landing_refresh", now=ended + 61) is None
        # once launched, the retry is the run in progress; one that will not be retried holds nothing
        instance.add_run_tags(failed.run_id, {"dagster/auto_retry_run_id": "retry"})
        assert run_in_progress(instance, "landing_refresh") is None
        _run(instance, "landing_refresh", dg.DagsterRunStatus.FAILURE, {"dagster/will_retry": "false"})
        assert isinstance(landing_folder_sensor(sensor_context(instance=instance)), dg.RunRequest)


def test_refreshes_are_followed_up_when_events_pause_or_every_interval(data_dir):
    landing = data_dir / "landing"

    def decide(**kwargs):
        return follow_up_decision(instance, landing, 600, **kwargs)[0]

    with dg.instance_for_test() as instance:
        assert "No successful landing refresh" in decide().skip_message

        first = _run(instance, "landing_refresh", dg.DagsterRunStatus.SUCCESS)
        # nothing landed since it began: follow it up at once, named after it
        request = decide()
        assert isinstance(request, dg.RunRequest) and request.run_key == first.run_id
        follow_up = _run(instance, "refresh_follow_up", dg.DagsterRunStatus.STARTED, request.tags)
        assert "is followed up by" in decide().skip_message

        # the next refresh waits for the follow-up in progress
        second = _run(instance, "landing_refresh", dg.DagsterRunStatus.SUCCESS)
        expected = f"{follow_up.run_id[:8]} is in progress or about to be retried; refresh {second.run_id[:8]} is next"
        assert expected in decide().skip_message
        instance.report_run_canceled(follow_up)

        # events keep arriving after that refresh began: wait for the interval, counted from the last follow-up
        write_lines(landing / "collector" / "later.jsonl", [event("later")])
        started = instance.get_run_record_by_id(follow_up.run_id).create_timestamp.timestamp()
        assert "due in 180 s" in decide(now=started + 420).skip_message
        due = decide(now=started + 600)
        assert isinstance(due, dg.RunRequest) and due.run_key == second.run_id

        # a refresh in progress goes first, for half an interval at most from when the follow-up began to wait
        refreshing = _run(instance, "landing_refresh", dg.DagsterRunStatus.STARTED)
        held, since = follow_up_decision(instance, landing, 600, now=started + 700)
        assert f"Refresh {refreshing.run_id[:8]} is in progress" in held.skip_message and since == started + 700
        later, still = follow_up_decision(instance, landing, 600, now=started + 950, held_since=since)
        assert "at the latest in 50 s" in later.skip_message and still == since
        overdue, cleared = follow_up_decision(instance, landing, 600, now=started + 1000, held_since=since)
        assert isinstance(overdue, dg.RunRequest) and cleared is None


def test_the_follow_up_sensor_keeps_its_wait_in_its_cursor_and_ignores_older_cursors(settings, data_dir):
    # the cursor the run-status sensor of earlier versions left under the same name
    older = '{"__class__": "RunStatusSensorCursor", "record_id": 22368, "update_timestamp": null}'
    with dg.instance_for_test() as instance:
        _run(instance, "refresh_follow_up", dg.DagsterRunStatus.SUCCESS)
        _run(instance, "landing_refresh", dg.DagsterRunStatus.SUCCESS)
        _run(instance, "landing_refresh", dg.DagsterRunStatus.STARTED)
        context = sensor_context(instance=instance, cursor=older)
        assert "is in progress; the follow-up comes after it" in follow_up_after_refresh(context).skip_message
        assert json.loads(context.cursor)["held_since"] > 0


def test_a_follow_up_created_after_a_refresh_ended_follows_it_up_whichever_refresh_it_was_for(data_dir):
    with dg.instance_for_test() as instance:
        first = _run(instance, "landing_refresh", dg.DagsterRunStatus.SUCCESS)
        second = _run(instance, "landing_refresh", dg.DagsterRunStatus.SUCCESS)
        follow_up = _run(
            instance, "refresh_follow_up", dg.DagsterRunStatus.SUCCESS, {"landing/refresh_run": first.run_id}
        )
        skip, _ = follow_up_decision(instance, data_dir / "landing", 600)
        assert f"Refresh {second.run_id[:8]} is followed up by {follow_up.run_id[:8]}" in skip.skip_message


def _run(instance, job_name: str, status: dg.DagsterRunStatus, tags: dict | None = None) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name=job_name, status=status, tags=tags or {})
    instance.add_run(run)
    return run


def test_publish_adds_the_data_health_tables_and_as_of(data_dir):
    warehouse = data_dir / "warehouse.duckdb"
    build_warehouse(warehouse, 2)
    with connect(str(warehouse)) as con:
        ensure(con, "raw")
        con.execute("create schema if not exists intermediate")
        con.execute("create table intermediate.int_as_of as select timestamp '2026-01-04 00:00:00' as as_of")
        con.execute(
            "insert into raw.load_manifest (file_name, checksum, file_size, file_mtime, rows_in, rows_loaded, "
            "rows_duplicate, rows_rejected, status, loaded_at, load_seconds, batch_id, gate_status) values "
            "('a.jsonl', 'c', 10, 0, 5, 2, 0, 3, 'loaded', timestamp '2026-01-06 08:00:00', 0.1, 'b1', 'passed')"
        )
        long_line = "x" * 2000
        con.executemany(
            "insert into raw.events_rejected values ('a.jsonl', ?, ?, ?, timestamp '2026-01-06 08:00:00')",
            [(4, "missing message_id", "line four"), (2, "missing message_id", long_line), (3, "bad", "line three")],
        )
        con.execute(
            "insert into raw.batches values ('b1', timestamp '2026-01-06 08:00:00', 1, 5, 2, 'passed', null, "
            "timestamp '2026-01-06 08:00:01')"
        )
        con.execute(
            "insert into raw.events values ('m1', 'u1', null, 'track', 'x', timestamp '2026-01-05 10:00:00', "
            "timestamp '2026-01-05 10:00:00', null, null, null, 'a.jsonl', 1, timestamp '2026-01-06 08:00:00')"
        )
        result = publish(con, data_dir / "serving.duckdb", data_dir / "exports")
    assert {name: rows for name, rows in result.tables.items() if name.startswith("ops.")} == {
        "ops.load_manifest": 1, "ops.batches": 1, "ops.rejects_by_file_reason": 2,
    }  # fmt: skip
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as fresh:
        rejects = fresh.execute(
            "select reason, rejected_rows, first_line_number, length(sample_line) from ops.rejects_by_file_reason "
            "order by reason"
        ).fetchall()
        # the sample is the first rejected line of that reason, cut to 500 characters
        assert rejects == [("bad", 1, 3, 10), ("missing message_id", 2, 2, 500)]
        assert fresh.execute("select gate_status from ops.batches").fetchall() == [("passed",)]
        meta = fresh.execute("select as_of::varchar, latest_event_at::varchar, tables from meta.publish").fetchone()
        assert meta == ("2026-01-04 00:00:00", "2026-01-05 10:00:00", 5)
    assert not (data_dir / "exports" / "ops").exists()  # ops is for the dashboard, not an export
