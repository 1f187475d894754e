"""orchestration.recover on a real instance, with real run workers killed with kill -9 while they hold the DuckDB
writer pool slot: the run is ended as it should be, its slot goes to the run waiting behind it, and a live run, a
reused process id and the instance config are handled."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest

from orchestration.recover import recover, worker_alive

POOL = "duckdb_writer"
T = TypeVar("T")

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


class Workers:
    """Run workers in subprocesses, killed at the end; a worker that exits early fails the test with its stderr."""

    def __init__(self, home: Path, script: Path) -> None:
        self.home, self.script, self.processes = home, script, []

    def start(self) -> subprocess.Popen:
        env = {**os.environ, "DAGSTER_HOME": str(self.home)}
        process = subprocess.Popen([sys.executable, str(self.script)], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.processes.append(process)
        return process

    def wait_for(self, condition: Callable[[], T], what: str, timeout: float = 90.0) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            for process in self.processes:
                if process.poll() not in (None, -signal.SIGKILL):
                    raise AssertionError(f"a worker exited with {process.returncode}: {process.stderr.read()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


@pytest.fixture
def workers(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    started = Workers(home, script)
    yield started
    started.kill_all()


def slot_holders(instance: dg.DagsterInstance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def test_a_killed_worker_is_failed_and_frees_its_slot_while_a_live_run_is_left_alone(workers: Workers) -> None:
    with dg.DagsterInstance.from_config(str(workers.home)) as instance:
        holder = workers.start()
        holder_run = workers.wait_for(lambda: slot_holders(instance), "the first slot claim").pop()
        workers.start()
        waiter_run = workers.wait_for(
            lambda: instance.event_log_storage.get_concurrency_info(POOL).pending_run_ids - {holder_run},
            "the second run to wait for the slot",
        ).pop()

        nothing = recover(instance)
        assert nothing.orphans == [] and nothing.slots_freed_for == [], "both workers are alive"

        holder.send_signal(signal.SIGKILL)
        holder.wait()
        recovered = recover(instance)

        assert [(r.run_id, r.pid, r.canceling) for r in recovered.orphans] == [(holder_run, holder.pid, False)]
        assert recovered.slots_freed_for == [holder_run]
        assert instance.get_run_by_id(holder_run).status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(holder_run, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert f"pid {holder.pid}" in failure[0].event_log_entry.dagster_event.message
        assert instance.get_run_by_id(waiter_run).status == dg.DagsterRunStatus.STARTED
        # the freed slot goes to the run that waited for it
        workers.wait_for(lambda: slot_holders(instance) == {waiter_run}, "the waiting run to claim the freed slot")
        assert recover(instance).orphans == []


@pytest.mark.parametrize("left", ["canceling", "failed elsewhere"])
def test_a_killed_run_being_canceled_ends_canceled_and_a_finished_run_gives_up_its_slot(
    workers: Workers, left: str
) -> None:
    with dg.DagsterInstance.from_config(str(workers.home)) as instance:
        holder = workers.start()
        run_id = workers.wait_for(lambda: slot_holders(instance), "the slot claim").pop()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        run = instance.get_run_by_id(run_id)
        if left == "canceling":  # Terminate pressed in the UI, but the worker was already gone
            instance.report_run_canceling(run)
        else:  # failed by something else (the code server, run monitoring) before it freed the slot
            instance.report_run_failed(run, "failed elsewhere")

        recovered = recover(instance)

        expected = {"canceling": dg.DagsterRunStatus.CANCELED, "failed elsewhere": dg.DagsterRunStatus.FAILURE}[left]
        assert instance.get_run_by_id(run_id).status == expected
        assert len(recovered.orphans) == (1 if left == "canceling" else 0)
        assert recovered.slots_freed_for == [run_id] and slot_holders(instance) == set()


def test_a_reused_process_id_is_not_the_run_worker() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.3)
        assert worker_alive(sleeper.pid, run_started_at=time.time())
        # the process with this id began after the run started: another process was given the id
        assert not worker_alive(sleeper.pid, run_started_at=time.time() - 60)
        assert not worker_alive(os.getpid(), run_started_at=time.time()), "recover itself is never the worker"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not worker_alive(sleeper.pid, run_started_at=time.time())


def test_the_shipped_instance_monitors_and_retries_runs_of_the_sensor_driven_jobs(tmp_path: Path) -> None:
    from orchestration.defs.refresh.jobs import follow_up_job, landing_refresh_job
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
