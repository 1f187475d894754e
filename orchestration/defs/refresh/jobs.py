"""The jobs that build the warehouse: everything (the daily full refresh and "Materialize all"), and the two lighter
runs that follow new files, `landing_refresh` (load, the live tier, publish) and `refresh_follow_up` (the follow-up
tier: ML features and scores, the follow-up marts, what reads them, publish again). Each selects its assets by
their refresh tier (orchestration/tiers.py); their schedule and sensors are in automation.py beside this."""

import dagster as dg

from orchestration.defs.serving.automation import FRESHNESS_CHECK_KEYS
from orchestration.step_profile import step_profile
from orchestration.tiers import FOLLOW_UP, LIVE, PUBLISH, selection

everything_job = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    hooks={step_profile},
    description="Load the landing folder, then build every dbt model and check (what 'Materialize all' does).",
)

# The freshness checks read only Dagster's records; their own sensor evaluates them. Left in the refresh they added
# 2-3 s to the end of every run, and the next refresh waits for the one in progress to end.
FRESHNESS_CHECKS = dg.AssetSelection.checks(*FRESHNESS_CHECK_KEYS)

# Their sensors start the next run only once the last one has ended, so a hung run is cancelled after half an hour
# (a 10M-event refresh takes under 3 minutes), and a crashed one retried once, for the files it had taken.
SENSOR_RUN_LIMITS = {"dagster/max_runtime": str(30 * 60), "dagster/max_retries": "1"}

landing_refresh_job = dg.define_asset_job(
    "landing_refresh",
    selection=selection(LIVE, PUBLISH) - FRESHNESS_CHECKS,
    # ahead of other runs' steps waiting for the DuckDB writer pool (a pool slot goes to the highest priority)
    tags={"dagster/priority": "10", **SENSOR_RUN_LIMITS},
    hooks={step_profile},
    description="What the landing sensor starts: load the new files, rebuild and check the live tier, publish "
    "the serving copy. Scores and the follow-up marts come next in their own run (refresh_follow_up); training is "
    "left to its own schedule.",
)

follow_up_job = dg.define_asset_job(
    "refresh_follow_up",
    selection=selection(FOLLOW_UP, PUBLISH),
    tags=SENSOR_RUN_LIMITS,
    hooks={step_profile},
    description="What follows the landing refreshes: the follow-up tier (ML features and scores from the champion "
    "models, the retention variants and experiment results, the marts and audience deliveries that read the "
    "scores, the Data Docs index), and the serving copy published again.",
)
