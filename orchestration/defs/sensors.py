"""Event-driven runs: new complete files in the landing folder start one run that loads and refreshes them."""

import hashlib
import json

import dagster as dg

from ingestion.discover import count_waiting, settled_files
from ingestion.settings import IngestSettings
from orchestration.defs.jobs import landing_refresh_job


def new_landing_files(cursor: str | None, settings: IngestSettings) -> tuple[list[str], str]:
    """Settled files that are new or changed since the cursor, and the cursor to store.

    The cursor maps each settled file name to its size and modification time; files gone from the folder drop out
    of it. Ingestion's manifest still decides what loads, so a file is never loaded twice even if this forgot.
    """
    seen = json.loads(cursor) if cursor else {}
    current = {f.name: [f.size, f.mtime] for f in settled_files(settings.landing_dir, settings.settle_seconds)}
    new = sorted(name for name, signature in current.items() if seen.get(name) != signature)
    return new, json.dumps(current, sort_keys=True)


@dg.sensor(
    job=landing_refresh_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one run for all complete files that appeared in the landing folder since the last tick.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext):
    settings = IngestSettings.from_env()
    new, cursor = new_landing_files(context.cursor, settings)
    if not new:
        waiting = count_waiting(settings.landing_dir, settings.settle_seconds)
        return dg.SkipReason(f"No new complete files; {waiting} still being written.")
    context.update_cursor(cursor)
    run_key = hashlib.sha256("\n".join(new).encode()).hexdigest()[:16] + f"-{len(new)}"
    return dg.RunRequest(run_key=run_key, tags={"landing/new_files": str(len(new)), "landing/first": new[0]})
