"""Each step of a Dagster run, read back from the instance: wall seconds, CPU seconds, peak memory so far and rows.

Wall time comes from the run's step statistics; CPU and peak memory from the `step profile:` line that the jobs'
hook logs at the end of every step (orchestration/step_profile.py); rows from the `dagster/row_count` of the
assets the step materialised. Usage: python -m bench.profile DAGSTER_HOME [JOB]
"""

from __future__ import annotations

import re
import sys

from orchestration.step_profile import PROFILE_PREFIX

_PROFILE = re.compile(re.escape(PROFILE_PREFIX) + r" cpu_seconds=([\d.]+) peak_rss_mb=(\d+)")


def run_profile(dagster_home: str, job_name: str | None = None) -> dict[str, object]:
    """The latest run (of `job_name`, or any): its id, wall seconds and one row per step, slowest first."""
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    with DagsterInstance.from_config(dagster_home) as instance:
        [run] = instance.get_runs(RunsFilter(job_name=job_name) if job_name else None, limit=1)
        steps: dict[str, dict[str, object]] = {}
        for stats in instance.get_run_step_stats(run.run_id):
            wall = (stats.end_time or 0) - (stats.start_time or 0)
            steps[stats.step_key] = {"step": stats.step_key, "status": str(stats.status.value if stats.status else ""),
                                     "wall_s": round(max(wall, 0.0), 2), "rows": 0}  # fmt: skip
        for entry in instance.all_logs(run.run_id):
            step = steps.get(entry.step_key or "")
            if step is None:
                continue
            if entry.dagster_event is None and (found := _PROFILE.search(entry.user_message or "")):
                step["cpu_s"], step["peak_mb"] = float(found.group(1)), int(found.group(2))
            elif entry.dagster_event and entry.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                count = entry.dagster_event.event_specific_data.materialization.metadata.get("dagster/row_count")
                step["rows"] += int(getattr(count, "value", 0) or 0)
        record = instance.get_run_record_by_id(run.run_id)
        wall = (record.end_time or 0) - (record.start_time or 0) if record else 0
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "wall_s": round(wall, 2),
        "steps": sorted(steps.values(), key=lambda step: -float(step["wall_s"])),
    }


def table(profile: dict[str, object], limit: int = 15) -> str:
    """The slowest steps as aligned text."""
    lines = [f"  {'step':<58} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'rows':>12}"]
    for step in profile["steps"][:limit]:
        lines.append(
            f"  {step['step'][:58]:<58} {step['wall_s']:>8} {step.get('cpu_s', '-'):>8} "
            f"{step.get('peak_mb', '-'):>8} {step['rows']:>12,}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    found = run_profile(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(f"{found['job']} {found['run_id']} {found['status']}: {found['wall_s']} s")
    print(table(found, limit=100))
