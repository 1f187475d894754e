"""What the benchmarks wait for and probe: runs in progress in a Dagster instance, a user in the serving copy."""

from __future__ import annotations

import time
from pathlib import Path


def runs_in_progress(dagster_home: str, job_name: str | None = None) -> int:
    """Runs (of `job_name`, or any) queued or running in the Dagster instance at `dagster_home`."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    statuses = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED]  # fmt: skip
    with DagsterInstance.from_config(dagster_home) as instance:
        return len(instance.get_runs(RunsFilter(job_name=job_name, statuses=statuses)))


def wait_until_idle(dagster_home: str, timeout: float, quiet_seconds: float = 12) -> None:
    """Until no run has been queued or running for `quiet_seconds` (longer than the gap between a refresh's
    success and the scoring run its sensor starts)."""
    deadline = time.perf_counter() + timeout
    quiet_since = None
    while time.perf_counter() < deadline:
        if runs_in_progress(dagster_home):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_seconds:
            return
        time.sleep(1)


def serving_has_user(serving: Path, user_id: str) -> bool:
    import duckdb

    if not serving.exists():
        return False
    try:
        with duckdb.connect(str(serving), read_only=True) as con:
            return (
                con.execute("select count(*) from marts.user_segments where user_id = ?", [user_id]).fetchone()[0] > 0
            )
    except duckdb.Error:
        return False  # mid-swap or not built yet
