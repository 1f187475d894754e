"""Event-driven runs: new complete files in the landing folder start one run that loads and refreshes them (one
such run at a time), and each refresh that succeeds is followed by a run that scores users and builds the
follow-up marts."""

import hashlib
import json

import dagster as dg

from ingestion.discover import count_waiting, settled_files
from ingestion.settings import IngestSettings
from orchestration.defs.jobs import follow_up_job, landing_refresh_job

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def new_landing_files(cursor: str | None, settings: IngestSettings) -> tuple[list[str], str]:
    """Settled files that are new or changed since the cursor, and the cursor to store.

    The cursor maps each settled file name to its size and modification time; files gone from the folder drop out
    of it. Ingestion's manifest still decides what loads, so a file is never loaded twice even if this forgot.
    """
    seen = json.loads(cursor) if cursor else {}
    current = {f.name: [f.size, f.mtime] for f in settled_files(settings.landing_dir, settings.settle_seconds)}
    new = sorted(name for name, signature in current.items() if seen.get(name) != signature)
    return new, json.dumps(current, sort_keys=True)


def run_not_begun(instance: dg.DagsterInstance, job_name: str) -> str | None:
    """The id of a run of `job_name` that is queued or started but has not begun any step, if there is one.

    Such a run will read whatever is there when its first step begins, so a second one would only repeat it. With
    a collector rotating its spool every few seconds and a refresh taking longer than that, starting a run per new
    file would queue runs without end.
    """
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS), limit=10)
    for run in runs:
        if not instance.get_run_step_stats(run.run_id):
            return run.run_id
    return None


def run_in_progress(instance: dg.DagsterInstance, job_name: str) -> str | None:
    """The id of a run of `job_name` that is queued, starting or running, if there is one."""
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS), limit=1)
    return runs[0].run_id if runs else None


@dg.sensor(
    job=landing_refresh_job,
    minimum_interval_seconds=3,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one run for all complete files that appeared in the landing folder since the last tick, "
    "once no other refresh is in progress (the next one takes everything that landed meanwhile).",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext):
    settings = IngestSettings.from_env()
    new, cursor = new_landing_files(context.cursor, settings)
    if not new:
        waiting = count_waiting(settings.landing_dir, settings.settle_seconds)
        return dg.SkipReason(f"No new complete files; {waiting} still being written.")
    # One refresh at a time. A second one started early would claim the DuckDB writer between the first one's
    # steps (pool slots pass from run to run at each step), so the first one's publish would wait for the second
    # one's dbt build: under steady traffic both took twice as long. The cursor stays, so these files still count
    # as new when that run ends, whether it succeeded or not.
    running = run_in_progress(context.instance, landing_refresh_job.name)
    if running:
        return dg.SkipReason(f"{len(new)} new file(s) wait for refresh {running[:8]}, still in progress.")
    context.update_cursor(cursor)
    run_key = hashlib.sha256("\n".join(new).encode()).hexdigest()[:16] + f"-{len(new)}"
    return dg.RunRequest(run_key=run_key, tags={"landing/new_files": str(len(new)), "landing/first": new[0]})


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[landing_refresh_job],
    request_job=follow_up_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful landing refresh, scores users with the champion models, builds the "
    "follow-up marts and republishes (not while another refresh is in progress: the follow-up comes after that one).",
)
def follow_up_after_refresh(context: dg.RunStatusSensorContext):
    pending = run_not_begun(context.instance, follow_up_job.name)
    if pending:
        return dg.SkipReason(f"Follow-up run {pending[:8]} has not begun yet; it will read this refresh.")
    refreshing = run_in_progress(context.instance, landing_refresh_job.name)
    if refreshing:
        # fresher data is on its way and gets the writer first; the follow-up comes after that refresh instead
        return dg.SkipReason(f"Refresh {refreshing[:8]} is in progress; the follow-up comes after it.")
    refresh_id = context.dagster_run.run_id
    return dg.RunRequest(run_key=refresh_id, tags={"landing/refresh_run": refresh_id})
