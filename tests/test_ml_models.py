"""Clustering and churn on a generated population with planted personas and churn, tracked in a real MLflow
(SQLite under a temporary DATA_DIR): recovery of the personas, holdout ROC AUC, the champion gate, stable cluster
ids and names across retrains, and the champion reloaded from the registry in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.dummy import DummyClassifier
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from ml.features import CHURN_FEATURES, data_version
from ml.settings import tracking_uri
from ml.tracking import (
    CHURN_MODEL,
    CLUSTER_MODEL,
    champion_version,
    clear_retraining,
    client,
    model_metrics,
    publish,
    retraining_requested,
)
from ml.training import CLUSTER_INPUTS, measure_drift, train_churn_model, train_cluster_model
from orchestration.defs.ml.assets import training_reasons
from tests.conftest import sensor_context
from tests.ml_helpers import build_generated_warehouse, read_features

pytestmark = pytest.mark.slow

USERS = 1000


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory):
    """1,000 generated users, their features and snapshots from the real dbt models, and MLflow under the same
    temporary DATA_DIR (set for the whole module)."""
    data_dir = tmp_path_factory.mktemp("ml") / "data"
    (data_dir / "landing").mkdir(parents=True)
    previous = {key: os.environ.get(key) for key in ("DATA_DIR", "MLFLOW_TRACKING_URI")}
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    build_generated_warehouse(data_dir, USERS)
    features, snapshots, truth = read_features(data_dir)
    yield data_dir, features, snapshots, truth
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def clusters(population):
    _, features, _, _ = population
    return train_cluster_model(features)


@pytest.fixture(scope="module")
def churn(population):
    _, _, snapshots, _ = population
    return train_churn_model(snapshots)


def test_clusters_recover_the_planted_personas(population, clusters):
    truth = population[3]
    assignments = clusters.result.assignments.merge(truth[["user_id", "persona"]], on="user_id")
    established = assignments[assignments["cluster_id"] > 0]
    # users with fewer than 8 active days are 'light users' (cluster 0): too little behaviour to tell apart
    assert len(established) > 300
    assert adjusted_rand_score(established["persona"], established["cluster_id"]) >= 0.8
    # names come from the profiles: the planted coupon users are the 'discount seekers'
    main = established.groupby("persona")["cluster_name"].agg(lambda names: names.mode()[0])
    assert main["discount_seeker"] == "discount seekers"
    assert main["power_user"] == "power users"
    assert main["casual_browser"] == "casual browsers"
    scores = clusters.result.scores
    assert set(scores["algorithm"]) == {"kmeans", "gaussian_mixture"} and scores["k"].min() == 4
    best = scores.sort_values("silhouette", ascending=False).iloc[0]
    assert (clusters.result.algorithm, clusters.result.k) == (best["algorithm"], best["k"])


def test_churn_beats_chance_on_the_time_holdout(churn):
    result = churn.result
    assert result.holdout_metrics["roc_auc"] >= 0.8
    assert 0 < result.holdout_metrics["brier"] < 0.2
    # the holdout is the latest cutoff; training cutoffs end a churn window before it
    assert result.training_frame["cutoff_at"].max() <= result.split.holdout_cutoff - pd.Timedelta(days=30)
    assert set(result.cv_scores["family"]) == {"logistic_regression", "random_forest", "gradient_boosting"}
    # permutation importance on the holdout: every feature measured, the top one matters
    assert set(result.importance["feature"]) == set(CHURN_FEATURES) and result.importance.iloc[0]["importance"] > 0


def test_first_models_become_champions_with_their_runs_logged(population, clusters, churn):
    mlflow_client = client()
    assert tracking_uri() == f"sqlite:///{population[0] / 'mlflow.db'}"
    for training, name, metric in ((clusters, CLUSTER_MODEL, "silhouette"), (churn, CHURN_MODEL, "roc_auc")):
        assert training.outcome.promoted and champion_version(mlflow_client, name) == training.outcome.model_version
        run = mlflow_client.get_run(training.outcome.run_id)
        assert run.data.params["data_rows"] == str(len(training.result.training_frame))
        assert len(run.data.params["data_sha256"]) == 64
        assert run.data.metrics[f"candidate_{metric}"] == pytest.approx(training.outcome.candidate_score)
        artifacts = {a.path for a in mlflow_client.list_artifacts(training.outcome.run_id, "plots")}
        assert artifacts
        assert run.info.artifact_uri.startswith((population[0] / "mlartifacts").as_uri())
    churn_plots = {a.path for a in mlflow_client.list_artifacts(churn.outcome.run_id, "plots")}
    assert churn_plots == {"plots/roc.png", "plots/calibration.png", "plots/feature_importance.png"}
    cluster_plots = {a.path for a in mlflow_client.list_artifacts(clusters.outcome.run_id, "plots")}
    assert cluster_plots == {"plots/silhouette_by_k.png", "plots/cluster_profiles.png"}


def test_a_worse_model_is_not_promoted_and_both_scores_are_logged(churn):
    split = churn.result.split
    train, holdout = split.train, split.holdout
    worse = DummyClassifier(strategy="prior").fit(train[list(CHURN_FEATURES)], train["is_churned"].astype(int))
    x_holdout, y_holdout = holdout[list(CHURN_FEATURES)], holdout["is_churned"].astype(int)
    outcome = publish(
        name=CHURN_MODEL,
        model=worse,
        input_example=x_holdout.head(3),
        params={"model_family": "dummy_prior"},
        metrics={"holdout_roc_auc": 0.5},
        data_version=data_version(train[["user_id", "cutoff_at"]], "2026-10-31"),
        metric="roc_auc",
        candidate_score=0.5,
        score_champion=lambda champion: roc_auc_score(y_holdout, champion.predict_proba(x_holdout)[:, 1]),
        reference=train[list(CHURN_FEATURES)],
        predict_fn="predict_proba",
    )
    assert not outcome.promoted
    assert outcome.champion_version == churn.outcome.model_version
    assert champion_version(client(), CHURN_MODEL) == churn.outcome.model_version  # the alias did not move
    run = client().get_run(outcome.run_id)
    assert run.data.metrics["candidate_roc_auc"] == 0.5
    assert run.data.metrics["champion_roc_auc"] == pytest.approx(churn.result.holdout_metrics["roc_auc"])
    assert run.data.tags["promoted"] == "false" and "champion kept" in run.data.tags["decision"]
    table = model_metrics()
    versions = table[table["model_name"] == CHURN_MODEL].drop_duplicates("model_version")
    assert versions.set_index("model_version")["is_champion"].to_dict() == {
        churn.outcome.model_version: True,
        outcome.model_version: False,
    }


def test_retraining_keeps_cluster_ids_and_names_and_needs_a_better_score(population, clusters):
    _, features, _, _ = population
    again = train_cluster_model(features)
    before, after = clusters.result, again.result
    # the same data gives the same clusters: matched to the champion's centroids, same ids and names
    assert after.matched_to_previous and max(after.matched_to_previous.values()) < 0.05
    merged = before.assignments.merge(after.assignments, on="user_id", suffixes=("_before", "_after"))
    assert (merged["cluster_id_before"] == merged["cluster_id_after"]).mean() > 0.98
    assert before.model.names == after.model.names
    # an equal holdout silhouette does not take the alias from the champion
    assert not again.outcome.promoted
    assert champion_version(client(), CLUSTER_MODEL) == clusters.outcome.model_version


def test_champions_reload_from_the_registry_in_a_fresh_process(population, clusters, churn, tmp_path):
    data_dir, features, _, _ = population
    inputs = features.head(50)
    inputs.to_parquet(tmp_path / "inputs.parquet")
    script = f"""
import json, sys
import pandas as pd
from ml.features import CHURN_FEATURES
from ml.tracking import load_model
frame = pd.read_parquet({str(tmp_path / "inputs.parquet")!r})
churn = load_model("churn")
clusters = load_model("user_clusters")
json.dump({{"churn": churn.predict_proba(frame[list(CHURN_FEATURES)])[:, 1].tolist(),
            "clusters": clusters.predict(frame).tolist()}}, sys.stdout)
"""
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads(done.stdout)
    expected = churn.result.model.predict_proba(inputs[list(CHURN_FEATURES)])[:, 1]
    np.testing.assert_allclose(reloaded["churn"], expected, rtol=1e-9)
    assert reloaded["clusters"] == clusters.result.model.predict(inputs[CLUSTER_INPUTS]).tolist()
    # the registry's champion version is what the fresh process loaded
    version = MlflowClient(tracking_uri()).get_model_version_by_alias(CHURN_MODEL, "champion")
    assert str(version.version) == churn.outcome.model_version


def test_drift_marks_the_champion_for_retraining_and_the_sensor_starts_training(population, churn, monkeypatch):
    from orchestration.defs.ml.automation import drift_check_result, ml_drift_sensor

    monkeypatch.setenv("ML_RETRAIN_COOLDOWN_HOURS", "0")  # the fixture has just trained it
    _, features, _, _ = population
    assert not measure_drift(CHURN_MODEL, features, 0.25).drifted_features  # today's data: no drift
    assert isinstance(ml_drift_sensor(sensor_context()), dg.SkipReason)
    # users who suddenly visit far less often
    shifted = features.assign(
        active_days_7=0, sessions_7=0, events_7=0, trend_7_28=features["trend_7_28"] / 4, recency_days=29.0
    )
    check = drift_check_result(measure_drift(CHURN_MODEL, shifted, 0.25))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "recency_days" in check.metadata["drifted_features"].value
    mark = retraining_requested(CHURN_MODEL)
    assert mark and mark.startswith("PSI over 0.25 on ")
    request = ml_drift_sensor(sensor_context())
    assert isinstance(request, dg.RunRequest) and request.tags["ml/train"] == "true"
    # the next training run knows why it trains
    reasons = training_reasons(
        requested_by=None,
        champion="1",
        drift_mark=mark,
        champion_as_of=None,
        as_of=pd.Timestamp.now(),
        max_age_days=7,
    )
    assert reasons == [f"marked for retraining: {mark}"]
    # within a day of a training, drift does not mark it again: a challenger on the same data would lose again
    clear_retraining(MlflowClient(tracking_uri()), CHURN_MODEL)
    monkeypatch.setenv("ML_RETRAIN_COOLDOWN_HOURS", "24")
    held = drift_check_result(measure_drift(CHURN_MODEL, shifted, 0.25))
    assert not held.passed and "retraining held: last trained " in held.description
    assert retraining_requested(CHURN_MODEL) is None
    assert isinstance(ml_drift_sensor(sensor_context()), dg.SkipReason)


def test_the_feature_lists_are_the_marts_numeric_columns(population):
    """ml/features.py names the feature columns by hand: they are exactly the numeric columns the real dbt models
    build, so a feature added to (or dropped from) the macro cannot be silently left out of (or break) training."""
    from ml.features import CHURN_FEATURES, CLUSTER_FEATURES, DRIFT_FEATURES, LOG_FEATURES

    _, features, snapshots, _ = population
    not_features = {"cutoff_at", "first_active_at", "last_active_at", "is_churn_scoring_population"}
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c]) and c not in not_features]
    assert tuple(numeric) == CHURN_FEATURES
    assert set(CHURN_FEATURES) <= set(snapshots.columns)
    assert set(CLUSTER_FEATURES) | set(DRIFT_FEATURES) | LOG_FEATURES <= set(CHURN_FEATURES)
