"""The job that materialises everything, and its daily schedule."""

import dagster as dg

everything_job = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    description="Load the landing folder, then build every dbt model and check (what 'Materialize all' does).",
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=everything_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh every day at 03:00 UTC, a safety net beside event-driven runs.",
)
