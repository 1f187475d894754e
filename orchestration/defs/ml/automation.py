"""When models are trained: weekly, and when drift marks a champion for retraining (checks and sensor)."""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from ml.features import NotEnoughData, load_user_features
from ml.settings import CHURN_MODEL, CLUSTER_MODEL, RECOMMENDATION_MODEL, using
from orchestration.defs.ml.assets import (
    CHURN_MODEL_KEY,
    CHURN_SCORES,
    CLUSTER_MODEL_KEY,
    RECOMMENDATION_MODEL_KEY,
    SNAPSHOTS,
    TRAIN_TAG,
    USER_CLUSTERS,
    markdown_table,
    read_frame,
)
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.step_profile import step_profile

if TYPE_CHECKING:
    from ml.training import DriftResult

ml_training_job = dg.define_asset_job(
    "ml_training",
    # the churn snapshots are refreshed here, not after every landing refresh: only training reads them
    selection=dg.AssetSelection.assets(CLUSTER_MODEL_KEY, CHURN_MODEL_KEY, RECOMMENDATION_MODEL_KEY).downstream()
    | dg.AssetSelection.assets(SNAPSHOTS),
    tags={TRAIN_TAG: "true"},
    hooks={step_profile},
    description="Refresh the churn snapshots, train the three models (champion gate in MLflow), then rescore and "
    "republish what reads them.",
)

weekly_training = dg.ScheduleDefinition(
    name="ml_weekly_training",
    job=ml_training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Retrain clustering, churn and recommendations every Monday at 04:00 UTC (after the daily refresh).",
)


def drift_check_result(result: "DriftResult") -> dg.AssetCheckResult:
    """Passed when no feature's PSI is over the threshold; otherwise the model is marked for retraining (unless it
    was trained within the cooldown, which the check then says)."""
    from ml.tracking import request_retraining

    drifted = result.drifted_features
    description, retraining = None, "not needed"
    if drifted:
        reason = f"PSI over {result.threshold} on {', '.join(drifted)} (max {result.max_psi:.3f})"
        held = request_retraining(result.model_name, reason)
        champion = f"{result.model_name} v{result.champion_version}"
        description = f"{champion} drifted; retraining held: {held}" if held else f"{champion} marked for retraining"
        retraining = f"held: {held}" if held else "requested"
    return dg.AssetCheckResult(
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "champion_version": result.champion_version,
            "max_psi": result.max_psi,
            "psi_threshold": result.threshold,
            "drifted_features": ", ".join(drifted) or "none",
            "retraining": retraining,
            "features": markdown_table(result.report, digits=4),
        },
    )


def drift_check(asset: dg.AssetKey, model_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=f"{model_name}_feature_drift",
        pool=DUCKDB_WRITER_POOL,
        description=f"PSI (and KS for continuous features) of today's inputs against the {model_name} champion's "
        "training data; over the threshold the model is marked for retraining (the drift sensor starts it).",
    )
    def _check(warehouse: WarehouseResource, mlflow: MLflowResource) -> dg.AssetCheckResult:
        from ml.training import measure_drift

        with using(mlflow.section(warehouse.data_path)) as ml:
            features = read_frame(warehouse, load_user_features)
            try:
                result = measure_drift(model_name, features, ml.drift_psi_threshold)
            except NotEnoughData as reason:
                return dg.AssetCheckResult(passed=True, metadata={"skipped": str(reason)})
            return drift_check_result(result)

    return _check


cluster_drift = drift_check(USER_CLUSTERS, CLUSTER_MODEL)
churn_drift = drift_check(CHURN_SCORES, CHURN_MODEL)


def _store_exists(uri: str) -> bool:
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


@dg.sensor(
    job=ml_training_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts ml_training when a drift check has marked a champion for retraining.",
)
def ml_drift_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, mlflow: MLflowResource):
    ml = mlflow.section(warehouse.data_path)
    if not _store_exists(ml.tracking_store):
        return dg.SkipReason("No MLflow store yet: nothing has been trained.")
    from ml.tracking import retraining_requested

    with using(ml):
        marks = {name: retraining_requested(name) for name in (CLUSTER_MODEL, CHURN_MODEL, RECOMMENDATION_MODEL)}
    marks = {name: reason for name, reason in marks.items() if reason}
    if not marks:
        return dg.SkipReason("No model is marked for retraining.")
    summary = "; ".join(f"{name}: {reason}" for name, reason in sorted(marks.items()))
    # the same mark never starts two runs; training clears it
    run_key = hashlib.sha256(summary.encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={TRAIN_TAG: "true", "ml/drift": summary[:200]})
