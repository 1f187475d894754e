"""orchestration.recover on a real instance: a run whose worker is killed with kill -9 while it holds the DuckDB
writer pool slot is marked failed and its slot freed, so the run waiting behind it goes on; a live run is left
alone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.recover import recover

POOL = "duckdb_writer"

# a run worker: one step in the writer pool that holds its slot until it is killed
WORKER = """
import time
import dagster as dg

@dg.asset(pool="duckdb_writer")
def holds_the_writer() -> None:
    time.sleep(300)

with dg.DagsterInstance.get() as instance:
    dg.materialize([holds_the_writer], instance=instance)
"""


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    return home


def start_worker(home: Path, script: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_is_failed_and_frees_its_slot_while_a_live_run_is_left_alone(
    dagster_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        try:
            holder = start_worker(dagster_home, script)
            workers.append(holder)
            holder_run = wait_for(
                lambda: instance.event_log_storage.get_concurrency_info(POOL).active_run_ids, "the first slot claim"
            ).pop()
            waiter = start_worker(dagster_home, script)
            workers.append(waiter)
            waiter_run = wait_for(
                lambda: instance.event_log_storage.get_concurrency_info(POOL).pending_run_ids - {holder_run},
                "the second run to wait for the slot",
            ).pop()

            assert recover(instance) == [], "both workers are alive: nothing to recover"

            holder.send_signal(signal.SIGKILL)
            holder.wait()
            recovered = recover(instance)

            assert [(r.run_id, r.pid) for r in recovered] == [(holder_run, holder.pid)]
            failed = instance.get_run_by_id(holder_run)
            assert failed.status == dg.DagsterRunStatus.FAILURE
            failure = instance.get_records_for_run(holder_run, of_type=dg.DagsterEventType.RUN_FAILURE).records
            assert f"pid {holder.pid}" in failure[0].event_log_entry.dagster_event.message
            assert instance.get_run_by_id(waiter_run).status == dg.DagsterRunStatus.STARTED
            # the freed slot goes to the run that waited for it
            wait_for(
                lambda: instance.event_log_storage.get_concurrency_info(POOL).active_run_ids == {waiter_run},
                "the waiting run to claim the freed slot",
            )
            assert recover(instance) == []
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()


def test_the_shipped_instance_monitors_and_retries_runs_of_the_sensor_driven_jobs(tmp_path: Path) -> None:
    from orchestration.defs.jobs import follow_up_job, landing_refresh_job
    from orchestration.paths import REPO_ROOT

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "orchestration" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        # retried only where a job asks, and only after a crash, not after a failed step
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0
        assert not instance.run_retries_retry_on_asset_or_op_failure
    for job in (landing_refresh_job, follow_up_job):
        assert job.tags["dagster/max_runtime"] == "1800"
        assert job.tags["dagster/max_retries"] == "1"
