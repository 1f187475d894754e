"""Where ML state lives: the MLflow tracking and registry URI and the artifact root, from the environment."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """`DATA_DIR` (default `data/` under the working directory), made absolute."""
    return Path(os.environ.get("DATA_DIR", "data")).expanduser().resolve()


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set, else SQLite at `$DATA_DIR/mlflow.db` (absolute, whatever the cwd)."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{data_dir() / 'mlflow.db'}"


def artifact_root() -> Path:
    """Where run artifacts and model files go for the default local store: `$DATA_DIR/mlartifacts`."""
    return data_dir() / "mlartifacts"


# Names of the two models in the MLflow registry (and of their experiments).
CLUSTER_MODEL = "user_clusters"
CHURN_MODEL = "churn"
