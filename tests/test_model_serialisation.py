"""Models are saved with skops and loaded only with the trusted-types list in ml.tracking: every model the pipeline
builds loads, and a champion holding an untrusted type, or a pickle left by an earlier version, is refused without
running its code (the marker its loading would write never appears), reported, and makes training due."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import skops.io
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score

from ml.churn import candidates
from ml.clustering import BehaviourClusterer, ClusterParams, train_clustering
from ml.features import CHURN_FEATURES, data_version
from ml.tracking import (
    CHAMPION,
    CHURN_MODEL,
    CLUSTER_MODEL,
    PIP_REQUIREMENTS,
    SKOPS_FILE,
    TRUSTED_TYPES,
    ModelRefused,
    champion_version,
    client,
    experiment_id,
    load_model,
    publish,
    retraining_requested,
)
from ml.training import assign_clusters, score_churn
from orchestration.defs.ml.assets import training_reasons
from tests.ml_helpers import synthetic_cluster_inputs

MARKER_ENV = "TEST_MODEL_SERIALISATION_MARKER"


class Payload(BaseEstimator):
    """What an attacker plants: building it (skops sets its state) writes a marker file, standing for any code."""

    def __setstate__(self, state: dict) -> None:
        marker = os.environ.get(MARKER_ENV)
        if marker:
            Path(marker).write_text("code ran")
        self.__dict__.update(state)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))


class PicklePayload:
    """A cloudpickled model whose unpickling creates the marker folder (os.mkdir: any callable would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def mlflow_dir(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real MLflow store (SQLite and artifacts) under the test's DATA_DIR."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(MARKER_ENV, raising=False)
    return data_dir


def churn_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.gamma(2.0, 3.0, (rows, len(CHURN_FEATURES))), columns=list(CHURN_FEATURES))
    y = (x["recency_days"] + rng.normal(0, 2, rows) > 6).astype(int).to_numpy()
    return x, y


def pipeline_models() -> dict[str, BaseEstimator]:
    """Every kind of model ml.churn and ml.clustering build: each churn family under both calibrations, and the
    clustering (k-means or a Gaussian mixture start, whichever wins) on two data sets."""
    x, y = churn_frame()
    models: dict[str, BaseEstimator] = {}
    for family, pipeline in candidates().items():
        for method in ("sigmoid", "isotonic"):
            models[f"churn {family} {method}"] = CalibratedClassifierCV(pipeline, method=method, cv=3).fit(x, y)
    for seed in (0, 1):
        features, population, _ = synthetic_cluster_inputs(seed=seed)
        result = train_clustering(features, population, ClusterParams(k_min=2, k_max=4))
        models[f"clusters {result.algorithm} seed={seed}"] = result.model
    return models


def test_every_model_the_pipeline_builds_needs_only_the_trusted_types():
    for name, model in pipeline_models().items():
        untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        assert untrusted <= set(TRUSTED_TYPES), (name, untrusted - set(TRUSTED_TYPES))
    assert not any(t.startswith(("builtins.", "os.", "posix.", "subprocess.")) for t in TRUSTED_TYPES)


def _publish_churn(model: BaseEstimator, x: pd.DataFrame, y: np.ndarray) -> str:
    outcome = publish(
        name=CHURN_MODEL,
        model=model,
        input_example=x.head(3),
        params={"model_family": "test"},
        metrics={},
        data_version=data_version(x.assign(user_id=range(len(x))), "2026-01-01"),
        metric="roc_auc",
        candidate_score=float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
        score_champion=lambda champion: roc_auc_score(y, champion.predict_proba(x)[:, 1]),
        reference=x,
        predict_fn="predict_proba",
    )
    assert outcome.promoted
    return outcome.model_version


def test_models_are_registered_as_skops_and_load_from_the_registry(mlflow_dir):
    x, y = churn_frame()
    model = CalibratedClassifierCV(candidates()["gradient_boosting"], method="sigmoid", cv=3).fit(x, y)
    version = _publish_churn(model, x, y)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{CHURN_MODEL}/{version}", dst_path=str(mlflow_dir)))
    assert (local / SKOPS_FILE).is_file() and not list(local.glob("*.pkl"))
    loaded = load_model(CHURN_MODEL)
    np.testing.assert_allclose(loaded.predict_proba(x)[:, 1], model.predict_proba(x)[:, 1])
    assert retraining_requested(CHURN_MODEL) is None

    features, population, _ = synthetic_cluster_inputs()
    clusters = train_clustering(features, population, ClusterParams(k_min=2, k_max=4))
    outcome = publish(
        name=CLUSTER_MODEL,
        model=clusters.model,
        input_example=features.head(3),
        params={},
        metrics={},
        data_version=data_version(clusters.training_frame, "2026-01-01"),
        metric="confidence",
        candidate_score=clusters.holdout_confidence,
        score_champion=lambda champion: 0.0,
        reference=clusters.training_frame,
    )
    assert outcome.promoted
    frame, scored_by = assign_clusters(features)
    assert scored_by == outcome.model_version
    assert frame["cluster_id"].tolist() == clusters.model.predict(features).tolist()
    pd.testing.assert_frame_equal(
        frame.drop(columns="model_version"), clusters.model.assign(features).astype({"cluster_id": np.int32})
    )
    reloaded = load_model(CLUSTER_MODEL)
    assert isinstance(reloaded, BehaviourClusterer) and reloaded.names == clusters.model.names
    pd.testing.assert_frame_equal(reloaded.centroid_frame(), clusters.model.centroid_frame())


def _plant(model: object, serialization_format: str, trusted: list[str] | None = None) -> str:
    """Register `model` as the churn champion the way an attacker with registry access could (the MLmodel file,
    which they write too, may even list their type as trusted)."""
    mlflow_client = client()
    with mlflow.start_run(experiment_id=experiment_id(mlflow_client, CHURN_MODEL)):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=CHURN_MODEL,
            serialization_format=serialization_format,
            skops_trusted_types=trusted,
            pip_requirements=PIP_REQUIREMENTS,  # no requirement inference: it would load the model
        )
    version = str(info.registered_model_version)
    mlflow_client.set_registered_model_alias(CHURN_MODEL, CHAMPION, version)
    return version


def _features(x: pd.DataFrame) -> pd.DataFrame:
    return x.assign(user_id=[f"u{i}" for i in range(len(x))], is_churn_scoring_population=True, cutoff_at="2026-01-01")


def test_a_champion_holding_an_untrusted_type_is_refused_without_running_it(mlflow_dir, monkeypatch):
    x, _ = churn_frame(20)
    version = _plant(Payload(), "skops", trusted=[f"{__name__}.Payload"])
    marker = mlflow_dir / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))  # armed from here on: building a Payload writes the marker

    with pytest.raises(ModelRefused, match=rf"churn v{version} holds types outside ml.tracking.TRUSTED_TYPES"):
        load_model(CHURN_MODEL)
    with pytest.raises(ModelRefused, match="Payload"):
        score_churn(_features(x))  # what the scoring asset calls: it fails with this reason
    assert not marker.exists()
    mark = retraining_requested(CHURN_MODEL)
    assert mark and mark.startswith("no loadable champion: ") and "Payload" in mark
    assert not marker.exists()
    reasons = training_reasons(
        requested_by=None,
        champion=champion_version(client(), CHURN_MODEL),
        drift_mark=mark,
        champion_as_of=None,
        as_of=pd.Timestamp.now(),
        max_age_days=7,
    )
    assert reasons == [f"marked for retraining: {mark}"]
    # MLflow's own loader trusts the list in the model's MLmodel file, which is why ml.tracking does not use it
    mlflow.sklearn.load_model(f"models:/{CHURN_MODEL}@{CHAMPION}")
    assert marker.read_text() == "code ran"


def test_a_pickled_champion_from_an_earlier_version_is_refused_and_replaced_by_training(mlflow_dir):
    marker = mlflow_dir / "pickle-ran"
    version = _plant(PicklePayload(marker), "cloudpickle")
    assert not marker.exists()

    with pytest.raises(ModelRefused, match=rf"churn v{version} is a pickle \(saved by an earlier version\)"):
        load_model(CHURN_MODEL)
    assert "is a pickle" in (retraining_requested(CHURN_MODEL) or "")
    assert not marker.exists()

    # the training that is now due replaces it: the refused champion cannot be scored, the candidate is promoted
    x, y = churn_frame()
    model = CalibratedClassifierCV(candidates()["logistic_regression"], method="sigmoid", cv=3).fit(x, y)
    new = _publish_churn(model, x, y)
    assert champion_version(client(), CHURN_MODEL) == new != version
    assert retraining_requested(CHURN_MODEL) is None
    frame, scored_by = score_churn(_features(x))
    assert scored_by == new and len(frame) == len(x)
    assert not marker.exists()
    run = MlflowClient().get_run(MlflowClient().get_model_version(CHURN_MODEL, new).run_id)
    assert f"champion v{version} could not be scored" in run.data.tags["decision"]


def test_each_data_dir_tracks_into_its_own_store(tmp_path, monkeypatch):
    """client() must not leave MLflow's URI in the environment, where tracking_uri() would take it for the user's."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for name in ("first", "second"):
        monkeypatch.setenv("DATA_DIR", str(tmp_path / name))
        (tmp_path / name).mkdir()
        assert client().tracking_uri == f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
        assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / name / 'mlflow.db'}"
