"""Where ML state lives (the MLflow tracking and registry URI, the artifact root) and the ML thresholds.

The values are an `MLSettings` section (settings/catalog.py). A caller hands its section in with `using(...)`
around the work (the Dagster assets do, from their resource); plain Python with none given (a test, a notebook)
gets the section `settings.load()` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from settings import MLSettings
from settings import load as load_settings

_given: ContextVar[MLSettings | None] = ContextVar("ml_settings", default=None)


@contextmanager
def using(settings: MLSettings) -> Iterator[MLSettings]:
    """Every ml/ call inside the block tracks to, and reads thresholds from, `settings`."""
    token = _given.set(settings)
    try:
        yield settings
    finally:
        _given.reset(token)


def current() -> MLSettings:
    """The section given by the innermost `using`, else the environment's."""
    return _given.get() or load_settings().ml


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set, else SQLite at `$DATA_DIR/mlflow.db` (absolute, whatever the cwd)."""
    return current().tracking_store


def artifact_root() -> Path:
    """Where run artifacts and model files go for the default local store: `$DATA_DIR/mlartifacts`."""
    return current().artifact_root


# Names of the models in the MLflow registry (and of their experiments).
CLUSTER_MODEL = "user_clusters"
CHURN_MODEL = "churn"
RECOMMENDATION_MODEL = "recommendations"
