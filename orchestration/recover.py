"""Runs left behind by a killed Dagster process: marked failed, with their pool slots freed.

When `dagster dev` (or a `dagster job execute`) dies without cleaning up (`kill -9`, a crash, the machine losing
power), its runs stay STARTED in the instance and keep the "duckdb_writer" slot they held. The landing sensor
then waits for a refresh that will never end, and every step that writes the warehouse waits for the slot. The
default run launcher cannot tell whether a run's process is alive (run monitoring only times runs out), so
`make dev` runs this first: a run whose worker process is gone from this machine is reported failed, saying
why, and its slots are freed. Runs whose process still exists are left alone, and so is a run not yet started.
"""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

ORPHAN_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class OrphanedRun:
    run_id: str
    job_name: str
    pid: int


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process id that executed the run, from its RUN_START event (None before that event)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event else None


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a reused id that now belongs to something else is not the run's worker
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"python" in cmdline.read_bytes() or b"dagster" in cmdline.read_bytes()


def orphaned_runs(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Started or canceling runs whose worker process no longer exists."""
    orphans = []
    for run in instance.get_runs(dg.RunsFilter(statuses=ORPHAN_STATUSES)):
        pid = worker_pid(instance, run.run_id)
        if pid is not None and not process_alive(pid):
            orphans.append(OrphanedRun(run.run_id, run.job_name, pid))
    return orphans


def recover(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Report every orphaned run failed and free the pool slots it held; returns what was recovered."""
    orphans = orphaned_runs(instance)
    for orphan in orphans:
        run = instance.get_run_by_id(orphan.run_id)
        if run is None or run.is_finished:
            continue
        instance.report_run_failed(
            run,
            f"Run worker (pid {orphan.pid}) is gone: the Dagster process that ran it was killed. "
            "Marked failed when Dagster started again; its retry (or the next refresh) takes what it had not done.",
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(orphan.run_id)
    return orphans


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m orchestration.recover", description=__doc__.splitlines()[0]).parse_args(
        argv
    )
    with dg.DagsterInstance.get() as instance:
        for orphan in recover(instance):
            print(f"recovered: {orphan.job_name} run {orphan.run_id} (worker pid {orphan.pid} is gone) marked failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
