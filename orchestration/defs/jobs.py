"""The job that materialises everything, its daily schedule, and the two lighter jobs that follow new files:
`landing_refresh` (load, the live models, publish) and `refresh_follow_up` (ML features and scores, the follow-up
marts, what reads them, publish again)."""

import dagster as dg

from orchestration.defs.dbt.assets import FOLLOW_UP_MARTS
from orchestration.defs.quality.data_docs import DATA_DOCS
from orchestration.defs.serving.assets import FRESHNESS_CHECK_KEYS

everything_job = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    description="Load the landing folder, then build every dbt model and check (what 'Materialize all' does).",
)

# Model training and the factorial analysis take seconds to minutes and change slowly: the daily refresh, the
# weekly training schedule and the drift sensor run them, with the churn snapshots only training reads.
SLOW_TO_CHANGE = dg.AssetSelection.assets(
    dg.AssetKey(["ml", "cluster_model"]),
    dg.AssetKey(["ml", "churn_model"]),
    dg.AssetKey(["ml", "experiment_factorial_effects"]),
    dg.AssetKey(["marts", "ml_churn_snapshots"]),
)
SERVING_COPY = dg.AssetSelection.assets(dg.AssetKey(["serving", "serving_copy"]))

# Scoring with the champion models and everything downstream of the features, and the follow-up marts (dbt tag
# follow_up: retention variants, experiment analysis), and the Data Docs index: they run after the landing refreshes,
# in a run of their own, so the live marts are published without waiting for them.
FOLLOW_UP = (
    dg.AssetSelection.assets(dg.AssetKey(["marts", "ml_feature_events"])).downstream()
    | dg.AssetSelection.assets(dg.AssetKey(["ml", "model_metrics"]), DATA_DOCS)
    | FOLLOW_UP_MARTS
) - SLOW_TO_CHANGE

# The freshness checks read only Dagster's records; their own sensor evaluates them. Left in the refresh they added
# 2-3 s to the end of every run, and the next refresh waits for the one in progress to end.
FRESHNESS_CHECKS = dg.AssetSelection.checks(*FRESHNESS_CHECK_KEYS)

# Their sensors start the next run only once the last one has ended, so a hung run is cancelled after half an hour
# (a 10M-event refresh takes under 3 minutes), and a crashed one retried once, for the files it had taken.
SENSOR_RUN_LIMITS = {"dagster/max_runtime": str(30 * 60), "dagster/max_retries": "1"}

landing_refresh_job = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.all() - SLOW_TO_CHANGE - (FOLLOW_UP - SERVING_COPY) - FRESHNESS_CHECKS,
    # ahead of other runs' steps waiting for the DuckDB writer pool (a pool slot goes to the highest priority)
    tags={"dagster/priority": "10", **SENSOR_RUN_LIMITS},
    description="What the landing sensor starts: load the new files, rebuild and check the live models, publish "
    "the serving copy. Scores and the follow-up marts come next in their own run (refresh_follow_up); training is "
    "left to its own schedule.",
)

follow_up_job = dg.define_asset_job(
    "refresh_follow_up",
    selection=FOLLOW_UP,
    tags=SENSOR_RUN_LIMITS,
    description="What follows each landing refresh: the ML features and scores from the champion models, the "
    "follow-up marts (retention variants, experiment results), the marts and audience deliveries that read the "
    "scores, and the serving copy published again.",
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=everything_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh every day at 03:00 UTC, a safety net beside event-driven runs.",
)
