"""A bad batch dropped into the landing folder leaves every mart exactly as it was, in the same run and after."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from demo_events import GeneratorConfig, generate
from ingestion.markup import md_escape
from tests.conftest import event, query, settle, write_lines

pytestmark = pytest.mark.slow


def marts_snapshot(data_dir: Path) -> dict[str, list[tuple]]:
    tables = [row[0] for row in query(data_dir, "select table_name from duckdb_tables() where schema_name = 'marts'")]
    return {table: query(data_dir, f"select * from marts.{table} order by all") for table in sorted(tables)}


def test_a_bad_batch_leaves_the_marts_exactly_as_they_were(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    generate(GeneratorConfig(users=150, seed=11, months=2, file_rows=6000), data_dir)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("SETTLE_SECONDS", "0")
    from orchestration.definitions import defs

    job = defs().resolve_job_def("materialize_everything")
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance).success
        before = marts_snapshot(data_dir)
        assert before["cohort_retention"] and len(before) >= 20

        # The bad batch: a CSV without its timestamp column, beside a file of valid events from a new user
        # late in time, which would move as_of and add a cohort if it reached the models.
        landing = data_dir / "landing"
        (landing / "export.csv").write_text("message_id,user_id,event\nx1,u1,Signed Up\nx2,u2,Signed Up\n")
        settle(landing / "export.csv")
        late = [event(f"late-{i}", "newcomer", timestamp="2026-11-20T10:00:00Z", received_at="2026-11-20T10:00:00Z")
                for i in range(5)]  # fmt: skip
        write_lines(landing / "late.jsonl", late)

        failed = job.execute_in_process(instance=instance, raise_on_error=False)

        gate = {
            e.event_specific_data.check_name: e.event_specific_data
            for e in failed.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        }
        assert not gate["batch_gate"].passed
        # Markdown in the UI: the problem (it names a client's file) is escaped
        assert gate["batch_gate"].description == md_escape("export.csv: lacks required column(s): timestamp")
        assert gate["files_reconcile"].passed  # nothing lost: every row of both files is accounted for
        # the blocking check fails the ingestion step, so no model step starts
        started = {e.step_key for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_START}
        assert started == {"landing_files"} and not failed.success
        assert marts_snapshot(data_dir) == before

        # A later run with nothing new rebuilds every model; the quarantined rows still stay out, and the gate
        # keeps warning (without blocking) until someone releases them.
        later = job.execute_in_process(instance=instance)
        assert later.success
        assert marts_snapshot(data_dir) == before
        [warning] = [
            e.event_specific_data
            for e in later.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and e.event_specific_data.check_name == "batch_gate"
        ]
        assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
        assert warning.description.endswith("still quarantined and left out of the models: late\\.jsonl")
    assert query(data_dir, "select count(*) from raw.events where user_id = 'newcomer'") == [(5,)]
    assert query(data_dir, "select file_name, gate_status from raw.load_manifest where file_name in "
                 "('export.csv', 'late.jsonl') order by 1") == [("export.csv", "not_applicable"),
                                                               ("late.jsonl", "quarantined")]  # fmt: skip
