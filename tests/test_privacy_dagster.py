"""The erase_users job and its request-folder sensor, run in process on a Dagster instance under DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion.loader import ingest_landing
from orchestration.defs.privacy.erasure import erase_users, erasure_requests
from orchestration.defs.resources import warehouse_resource
from privacy import ledger
from settings import load
from tests.conftest import event, query, settle, write_lines


def test_a_request_file_starts_one_erasure_that_deletes_it_and_earlier_runs_naming_the_ids(data_dir: Path):
    write_lines(data_dir / "landing" / "a.jsonl", [event("m1", "alice"), event("m2", "bob"), event("m3", "zoe")])
    settings = load({"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0"})
    ingest_landing(settings.ingest)
    resources = {"warehouse": warehouse_resource(data_dir=str(data_dir), settle_seconds="0")}
    (data_dir / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(data_dir / "dagster_home")) as instance:
        # an erasure launched by hand: its config names alice in the run storage
        by_hand = erase_users.execute_in_process(
            run_config={"ops": {"erase": {"config": {"users": ["alice"]}}}}, resources=resources, instance=instance
        )
        assert by_hand.success

        requests = settings.privacy.requests_dir
        requests.mkdir(parents=True)
        (requests / "r1.txt").write_text("bob\nzoe\n")
        settle(requests / "r1.txt")
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            run_requests = list(erasure_requests(context))
        assert [r.run_config for r in run_requests] == [{"ops": {"erase": {"config": {"request_file": "r1.txt"}}}}]

        result = erase_users.execute_in_process(
            run_config=run_requests[0].run_config, resources=resources, instance=instance
        )

        assert result.success
        assert not (requests / "r1.txt").exists()
        assert query(data_dir, "select count(*) from raw.events") == [(0,)]
        # the hand-launched run held a clear id in its config: deleted by the next erasure
        assert [run.run_id for run in instance.get_runs()] == [result.run_id]
        assert "alice" not in str(instance.get_run_by_id(result.run_id).run_config)
    finished = [entry for entry in ledger.entries(settings.privacy.ledger_path) if entry["event"] == "finished"]
    assert [len(entry["users"]) for entry in finished] == [1, 2]
    assert finished[1]["removed"]["dagster runs"] == {"runs_deleted": 1}
