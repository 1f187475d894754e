"""Clustering and churn on a generated population with planted personas and churn, tracked in a real MLflow
(SQLite under a temporary DATA_DIR): recovery of the personas over all users and by band of history, low confidence
on a thin history, holdout ROC AUC, the champion gate, stable cluster ids and names across a retrain on 10% more
data, and the champion reloaded from the registry in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.dummy import DummyClassifier
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from ml.clustering import in_holdout
from ml.features import CHURN_FEATURES, MIX_EVENTS, data_version, mix_column, weight_column
from ml.settings import tracking_uri
from ml.tracking import (
    CHURN_MODEL,
    CLUSTER_MODEL,
    champion_version,
    clear_retraining,
    client,
    load_model,
    model_metrics,
    publish,
    retraining_requested,
)
from ml.training import cluster_inputs, measure_drift, train_churn_model, train_cluster_model
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
    features, mix_population, snapshots, truth = read_features(data_dir)
    yield data_dir, features, snapshots, truth, mix_population
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def first_users(features: pd.DataFrame) -> pd.DataFrame:
    """90% of the users (a fixed tenth left out by hash of the id): the first model is trained on them, the
    retrain gets 10% more data."""
    return features[~in_holdout(features["user_id"].map(lambda u: f"later:{u}"), 0.1)]


@pytest.fixture(scope="module")
def clusters(population):
    _, features, _, truth, mix_population = population
    return train_cluster_model(first_users(features), mix_population, planted=truth)


@pytest.fixture(scope="module")
def churn(population):
    _, _, snapshots, _, _ = population
    return train_churn_model(snapshots)


def test_clusters_recover_the_planted_personas_over_all_users(population, clusters):
    _, features, _, truth, _ = population
    result = clusters.result
    assignments = result.model.assign(features).merge(truth[["user_id", "persona"]], on="user_id")
    assert len(assignments) == len(features)  # every user has a cluster: no light-users bin
    assert adjusted_rand_score(assignments["persona"], assignments["cluster_id"]) >= 0.8
    # logged by band of history (measured on the users the model was trained with)
    agreement = clusters.planted
    assert agreement["ari_planted_all"] >= 0.8 and agreement["ari_planted_8_plus_days"] >= 0.9
    assert agreement["users_planted_1_day"] > 100 and agreement["ari_planted_2_7_days"] >= 0.7
    # names come from the profiles: the planted coupon users are the 'discount seekers'
    main = assignments.groupby("persona")["cluster_name"].agg(lambda names: names.mode()[0])
    assert main["discount_seeker"] == "discount seekers"
    assert main["power_user"] == "power users"
    assert main["casual_browser"] == "casual browsers"
    scores = result.scores
    assert set(scores["algorithm"]) == {"kmeans", "gaussian_mixture"} and scores["k"].min() == 3
    # the rule of ml/clustering.select, by hand: at each k the start with the smaller within-cluster distance,
    # then the highest Calinski-Harabasz across k (a mixture's k = 3 may score higher yet lose its own k to K-Means)
    per_k = scores.loc[scores.groupby("k")["within_distance"].idxmin()]
    best = per_k.sort_values("calinski_harabasz", ascending=False).iloc[0]
    assert (result.algorithm, result.k) == (best["algorithm"], best["k"]) and result.k == 5


def test_a_thin_history_gets_a_low_confidence(population, clusters):
    data_dir, features, _, _, mix_population = population
    model = clusters.result.model
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        priors = dict(con.execute("select distinct dimension, prior_events from marts.ml_user_mix").fetchall())
    # a user whose only action is one page view on a phone between 20:00 and 23:59 on a weekday
    one = {"action": "page_viewed", "device": "mobile", "time_of_day": "20-23h", "day_of_week": "weekday"}
    user = features.iloc[[0]].copy()
    user["user_id"] = "one-event"
    for column in model.mix_features:
        dimension, category = column.removeprefix("mix:").split(":", 1)
        weight = 1 / (1 + priors[dimension]) if dimension in one else 0.0
        user[column] = weight * (category == one.get(dimension)) + (1 - weight) * mix_population[column]
        user[weight_column(dimension)] = weight
    user[MIX_EVENTS] = 1
    placed = model.assign(user).iloc[0]
    established = model.assign(features[features["active_days_total"] >= 8])
    assert placed["is_low_data"] and placed["events"] == 1
    assert placed["confidence"] < 0.2 < 0.5 < established["confidence"].mean()
    assert mix_column("action", "page_viewed") in model.mix_features


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
    for training, name, metric in ((clusters, CLUSTER_MODEL, "confidence"), (churn, CHURN_MODEL, "roc_auc")):
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
    assert cluster_plots == {"plots/selection_by_k.png", "plots/cluster_profiles.png"}
    logged = mlflow_client.get_run(clusters.outcome.run_id).data.metrics
    assert {f"ari_planted_{band}" for band in ("all", "1_day", "2_7_days", "8_plus_days")} <= set(logged)
    assert logged["ari_planted_all"] == pytest.approx(clusters.planted["ari_planted_all"])


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


def test_a_retrain_on_10_percent_more_data_keeps_cluster_ids_and_names(population, clusters):
    _, features, _, truth, mix_population = population
    again = train_cluster_model(features, mix_population, planted=truth)
    before, after = clusters.result, again.result
    assert len(after.assignments) == len(features) > len(before.assignments)
    # matched to the champion's profiles: the same ids and names, nearly every user where it was
    assert sorted(after.matched_to_previous) == sorted(before.model.cluster_ids)
    merged = before.model.assign(features).merge(after.assignments, on="user_id", suffixes=("_before", "_after"))
    assert (merged["cluster_id_before"] == merged["cluster_id_after"]).mean() > 0.95
    assert before.model.names == after.model.names
    # the alias moves only on a strictly better holdout confidence, and the decision is logged
    outcome = again.outcome
    assert outcome.promoted == (outcome.candidate_score > outcome.champion_score)
    expected = outcome.model_version if outcome.promoted else clusters.outcome.model_version
    assert champion_version(client(), CLUSTER_MODEL) == expected


def test_champions_reload_from_the_registry_in_a_fresh_process(population, clusters, churn, tmp_path):
    data_dir, features, _, _, _ = population
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
    model = load_model(CLUSTER_MODEL)  # the champion the fresh process loaded
    assert reloaded["clusters"] == model.predict(inputs[cluster_inputs(model, inputs)]).tolist()
    # the registry's champion version is what the fresh process loaded
    version = MlflowClient(tracking_uri()).get_model_version_by_alias(CHURN_MODEL, "champion")
    assert str(version.version) == churn.outcome.model_version


def test_drift_marks_the_champion_for_retraining_and_the_sensor_starts_training(population, churn, monkeypatch):
    from orchestration.defs.ml.automation import drift_check_result, ml_drift_sensor

    monkeypatch.setenv("ML_RETRAIN_COOLDOWN_HOURS", "0")  # the fixture has just trained it
    _, features, _, _, _ = population
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
    from ml.features import CHURN_FEATURES, DRIFT_FEATURES, RATE_FEATURES

    _, features, snapshots, _, _ = population
    not_features = {"cutoff_at", "first_active_at", "last_active_at", "is_churn_scoring_population", MIX_EVENTS}
    numeric = [
        c
        for c in features.columns
        if pd.api.types.is_numeric_dtype(features[c]) and c not in not_features and not c.startswith("mix")
    ]
    assert tuple(numeric) == CHURN_FEATURES
    assert set(CHURN_FEATURES) <= set(snapshots.columns)
    assert set(RATE_FEATURES) | set(DRIFT_FEATURES) <= set(CHURN_FEATURES)
