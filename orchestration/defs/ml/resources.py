"""Our own small MLflow resource (not dagster-mlflow): where tracking goes and the thresholds of the ML assets."""

import os

import dagster as dg


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking/registry URI (empty: sqlite at $DATA_DIR/mlflow.db), the UI address for links, the PSI
    over which drift marks a model for retraining, how old (in days of data) a champion may get, and the active
    days a user needs to be clustered (fewer: cluster 0, light users)."""

    tracking_uri: str = ""
    ui_url: str = "http://127.0.0.1:5000"
    drift_psi_threshold: float = 0.25
    max_champion_age_days: float = 7.0
    cluster_min_active_days: int = 8

    def activate(self, data_dir: str) -> None:
        """Point ml/ (which reads the environment, see ml/settings.py) at this resource's settings."""
        os.environ["DATA_DIR"] = data_dir
        os.environ["MLFLOW_UI_URL"] = self.ui_url
        if self.tracking_uri:
            os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri


def mlflow_resource_from_env() -> MLflowResource:
    """MLFLOW_TRACKING_URI, MLFLOW_UI_URL, ML_DRIFT_PSI_THRESHOLD, ML_MAX_CHAMPION_AGE_DAYS,
    ML_CLUSTER_MIN_ACTIVE_DAYS (all optional)."""
    return MLflowResource(
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", ""),
        ui_url=os.environ.get("MLFLOW_UI_URL", "http://127.0.0.1:5000"),
        drift_psi_threshold=float(os.environ.get("ML_DRIFT_PSI_THRESHOLD", "0.25")),
        max_champion_age_days=float(os.environ.get("ML_MAX_CHAMPION_AGE_DAYS", "7")),
        cluster_min_active_days=int(os.environ.get("ML_CLUSTER_MIN_ACTIVE_DAYS", "8")),
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"mlflow": mlflow_resource_from_env()})
