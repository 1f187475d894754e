"""The job that materialises everything, its daily schedule, and the lighter job the landing sensor starts."""

import dagster as dg

everything_job = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    description="Load the landing folder, then build every dbt model and check (what 'Materialize all' does).",
)

# Model training and the factorial analysis take seconds to minutes and change slowly: the daily refresh, the
# weekly training schedule and the drift sensor run them. Scoring stays in: it loads the champion as it is.
SLOW_TO_CHANGE = dg.AssetSelection.assets(
    dg.AssetKey(["ml", "cluster_model"]),
    dg.AssetKey(["ml", "churn_model"]),
    dg.AssetKey(["ml", "experiment_factorial_effects"]),
)

landing_refresh_job = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.all() - SLOW_TO_CHANGE,
    description="What the landing sensor starts: load the new files, rebuild and check the models, score users with "
    "the champion models, deliver audiences, publish the serving copy. Training is left to its own schedule.",
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=everything_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh every day at 03:00 UTC, a safety net beside event-driven runs.",
)
