"""When the refresh jobs run: the daily full refresh, and event-driven runs: new complete files in the landing folder
start one run that loads and refreshes them (one such run at a time), and successful refreshes are followed by a
run that scores users and builds the follow-up marts (when events pause, and at most every few minutes while they
keep arriving)."""

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from ingestion.discover import count_waiting, latest_arrival, settled_files
from ingestion.markup import plain_text
from ingestion.s3_source import sync_s3
from orchestration.defs.refresh.jobs import everything_job, follow_up_job, landing_refresh_job
from orchestration.defs.resources import WarehouseResource
from settings import IngestSettings

daily_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=everything_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh every day at 03:00 UTC, a safety net beside event-driven runs.",
)

REFRESH_RUN_TAG = "landing/refresh_run"  # on a follow-up run: the refresh it follows
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


def latest_run(instance: dg.DagsterInstance, job_name: str, statuses=None) -> dg.DagsterRun | None:
    """The most recently created run of `job_name` (with one of `statuses`, if given)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=statuses or []), limit=1)
    return runs[0] if runs else None


RETRY_WAIT_SECONDS = 60


def run_in_progress(instance: dg.DagsterInstance, job_name: str, now: float | None = None) -> str | None:
    """The id of a run of `job_name` that is queued, starting or running, or that failed and waits for Dagster to
    launch its retry (for RETRY_WAIT_SECONDS after it ended, at most: the retry daemon looks every few seconds)."""
    run = latest_run(instance, job_name, IN_PROGRESS)
    if run:
        return run.run_id
    latest = latest_run(instance, job_name)
    if latest is None or not latest.is_complete_and_waiting_to_retry:
        return None
    record = instance.get_run_record_by_id(latest.run_id)
    ended = record.end_time or record.update_timestamp.timestamp()
    return latest.run_id if (time.time() if now is None else now) - ended < RETRY_WAIT_SECONDS else None


@dg.sensor(
    job=landing_refresh_job,
    minimum_interval_seconds=3,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one run for all complete files that appeared in the landing folder since the last tick, "
    "once no other refresh is in progress (the next one takes everything that landed meanwhile).",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    settings = warehouse.ingest_settings()
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
        return dg.SkipReason(
            f"{len(new)} new file(s) wait for refresh {running[:8]}, in progress or about to be retried."
        )
    context.update_cursor(cursor)
    run_key = hashlib.sha256("\n".join(new).encode()).hexdigest()[:16] + f"-{len(new)}"
    return dg.RunRequest(
        run_key=run_key, tags={"landing/new_files": str(len(new)), "landing/first": plain_text(new[0])}
    )


def follow_up_decision(
    instance: dg.DagsterInstance,
    landing_dir: Path,
    interval_seconds: float,
    now: float | None = None,
    held_since: float | None = None,
) -> tuple[dg.RunRequest | dg.SkipReason, float | None]:
    """Whether to follow up the latest successful refresh now, and since when a due follow-up has been held back.

    A follow-up shares the one DuckDB writer with the refreshes for a minute or more, and each refresh it overlaps
    takes about twice as long, so while events keep arriving it runs at most every `interval_seconds`; once they
    pause (nothing landed since the latest refresh began) it runs at once. Each successful refresh is followed up,
    by its own follow-up or a later one. A due follow-up waits for the refresh in progress to end, but for half an
    interval at most (`held_since` is when it began to wait): refreshes under steady traffic may leave no gap.
    """
    now = time.time() if now is None else now
    refresh = latest_run(instance, landing_refresh_job.name, [dg.DagsterRunStatus.SUCCESS])
    if refresh is None:
        return dg.SkipReason("No successful landing refresh yet."), None
    refreshed = instance.get_run_record_by_id(refresh.run_id)
    previous = latest_run(instance, follow_up_job.name)
    previous_record = previous and instance.get_run_record_by_id(previous.run_id)
    # update_timestamp has whole seconds only: a run without an end time ended no earlier than it was created
    refresh_ended = refreshed.end_time or max(refreshed.create_timestamp, refreshed.update_timestamp).timestamp()
    # a follow-up created after the refresh ended reads what it wrote, whichever refresh it was started for
    if previous_record and (
        previous.tags.get(REFRESH_RUN_TAG) == refresh.run_id
        or previous_record.create_timestamp.timestamp() >= refresh_ended
    ):
        return dg.SkipReason(f"Refresh {refresh.run_id[:8]} is followed up by {previous.run_id[:8]}."), None
    following = run_in_progress(instance, follow_up_job.name, now)
    if following:
        message = (
            f"Follow-up {following[:8]} is in progress or about to be retried; refresh {refresh.run_id[:8]} is next."
        )
        return dg.SkipReason(message), None
    since_previous = None
    if previous_record:
        since_previous = now - (previous_record.start_time or previous_record.create_timestamp.timestamp())
    overdue = since_previous is None or since_previous >= interval_seconds
    arrived = latest_arrival(landing_dir)
    still_arriving = arrived is not None and arrived >= (refreshed.start_time or refreshed.create_timestamp.timestamp())
    if still_arriving and not overdue:
        return dg.SkipReason(
            f"Events are still arriving; the next follow-up is due in {interval_seconds - since_previous:.0f} s "
            "(FOLLOW_UP_EVERY_MINUTES), or as soon as they pause."
        ), None
    refreshing = run_in_progress(instance, landing_refresh_job.name, now)
    if refreshing:
        # fresher data is on its way and gets the writer first: the follow-up comes after that refresh
        held_since = held_since or now
        left = interval_seconds / 2 - (now - held_since)
        if left > 0:
            message = f"Refresh {refreshing[:8]} is in progress; the follow-up comes after it"
            return dg.SkipReason(f"{message} (at the latest in {left:.0f} s)."), held_since
    return dg.RunRequest(run_key=refresh.run_id, tags={REFRESH_RUN_TAG: refresh.run_id}), None


@dg.sensor(
    job=follow_up_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Follows successful landing refreshes with a run that scores users with the champion models, "
    "builds the follow-up marts and republishes: as soon as events pause, and at most every FOLLOW_UP_EVERY_MINUTES "
    "(default 10) while they keep arriving; after the refresh in progress, if there is one (waiting half an "
    "interval at most).",
)
def follow_up_after_refresh(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    settings = warehouse.settings()
    decision, held_since = follow_up_decision(
        context.instance,
        settings.ingest.landing_dir,
        60 * settings.refresh.follow_up_every_minutes,
        held_since=held_since_in(context.cursor),
    )
    context.update_cursor(None if held_since is None else json.dumps({"held_since": held_since}))
    return decision


def held_since_in(cursor: str | None) -> float | None:
    """The time a due follow-up began to wait, from the sensor's cursor; None for any other cursor (this sensor
    was a run-status sensor before, whose cursor an upgraded instance still holds)."""
    try:
        return float(json.loads(cursor)["held_since"])
    except (TypeError, ValueError, KeyError):
        return None


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="With LANDING_S3_BUCKET set: copies the bucket's new objects into landing/s3/<bucket>/ (at most "
    "LANDING_S3_MAX_BYTES_PER_SYNC a tick), where the landing sensor sees them as new files.",
)
def s3_landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    settings = warehouse.ingest_settings()
    if not settings.s3_bucket:
        return dg.SkipReason("LANDING_S3_BUCKET is not set: no bucket to copy from.")
    synced = sync_s3(settings)
    for key, reason in list(synced.skipped.items())[:20]:
        context.log.warning(f"s3://{plain_text(settings.s3_bucket)}/{plain_text(key, 300)} not copied: {reason}")
    return dg.SkipReason(synced.summary())
