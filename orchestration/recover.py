"""Runs left behind by a killed Dagster: ended in the instance, with the pool slots they held freed.

`make dev` and `make run` call this before Dagster starts. The default run launcher cannot tell whether a run's
worker is alive, so a run killed with its worker (`kill -9`, a crash, a power cut) stays STARTED, holding the
"duckdb_writer" slot, and the sensors wait for it for ever.
"""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class OrphanedRun:
    run_id: str
    job_name: str
    pid: int
    canceling: bool


@dataclass(frozen=True)
class Recovery:
    orphans: list[OrphanedRun]
    slots_freed_for: list[str]  # finished runs that still held or awaited a slot


def run_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The id of the process that executed the run and when it said so, from its RUN_START event."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event.pid is None:
        return None
    entry = records[0].event_log_entry
    return entry.dagster_event.pid, entry.timestamp


def process_start_time(pid: int) -> float | None:
    """When the process began (seconds since the epoch, to about a second), from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def worker_alive(pid: int, run_started_at: float) -> bool:
    """Whether the run's worker still exists: a process with its id that began before the run did."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    began = process_start_time(pid)
    # a process that began after the run started was given a reused id (after a reboot, say): not the worker
    return began is None or began <= run_started_at + 2


def orphaned_runs(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Started or canceling runs whose worker process is gone. Runs not started yet are left to run monitoring."""
    orphans = []
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
        worker = run_worker(instance, run.run_id)
        if worker is not None and not worker_alive(*worker):
            canceling = run.status == dg.DagsterRunStatus.CANCELING
            orphans.append(OrphanedRun(run.run_id, run.job_name, worker[0], canceling))
    return orphans


def free_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots (and pending claims) of runs that have ended; returns those runs' ids."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = list(storage.get_concurrency_run_ids())
    finished = (
        [run.run_id for run in instance.get_runs(dg.RunsFilter(run_ids=holders, statuses=FINISHED))] if holders else []
    )
    for run_id in finished:
        storage.free_concurrency_slots_for_run(run_id)
    return finished


def recover(instance: dg.DagsterInstance) -> Recovery:
    """End every orphaned run (failed, or canceled if it was being canceled) and free the slots of finished runs."""
    orphans = orphaned_runs(instance)
    for orphan in orphans:
        run = instance.get_run_by_id(orphan.run_id)
        if run is None or run.is_finished:
            continue
        message = f"Run worker (pid {orphan.pid}) is gone: the Dagster process that ran it was killed."
        if orphan.canceling:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
    return Recovery(orphans, free_slots_of_finished_runs(instance))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.recover", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        recovery = recover(instance)
    for orphan in recovery.orphans:
        ended = "canceled" if orphan.canceling else "failed"
        print(f"recovered: {orphan.job_name} run {orphan.run_id} (worker pid {orphan.pid} is gone) marked {ended}")
    if recovery.slots_freed_for:
        print(f"recovered: pool slots freed for {len(recovery.slots_freed_for)} finished run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
