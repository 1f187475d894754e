"""Train, track and register both models, score with the champions, and measure drift: what the orchestration
calls. Every function raises NotEnoughData (with the reason) when the data cannot support it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ml import plots
from ml.churn import ChurnParams, ChurnResult, risk_tier, train_churn
from ml.clustering import (
    BehaviourClusterer,
    ClusteringResult,
    ClusterParams,
    holdout_confidence,
    planted_agreement,
    train_clustering,
)
from ml.drift import drift_report
from ml.features import (
    CHURN_FEATURES,
    DRIFT_FEATURES,
    MIX_EVENTS,
    RATE_FEATURES,
    WEIGHT_PREFIX,
    NotEnoughData,
    data_version,
    mix_columns,
)
from ml.recommendations import (
    ItemItemRecommender,
    RecommendationParams,
    evaluate,
    popularity_recommendations,
    split_by_time,
)
from ml.tracking import (
    CHURN_MODEL,
    CLUSTER_MODEL,
    RECOMMENDATION_MODEL,
    ModelRefused,
    PublishOutcome,
    champion_reference,
    champion_version,
    client,
    load_model,
    publish,
)

log = logging.getLogger(__name__)


@dataclass
class ClusterTraining:
    result: ClusteringResult
    outcome: PublishOutcome
    planted: dict[str, float]  # agreement with planted personas (empty when there are none)


@dataclass
class ChurnTraining:
    result: ChurnResult
    outcome: PublishOutcome


def as_of_of(features: pd.DataFrame) -> str:
    """The as_of the feature mart was cut at (its cutoff_at)."""
    if features.empty:
        raise NotEnoughData("the feature mart is empty: no user has any activity")
    return str(pd.Timestamp(features["cutoff_at"].max()))


def _champion_or_none(name: str) -> object | None:
    """The champion, or None when there is none or it is refused (then ids start afresh, as for a first model)."""
    version = champion_version(client(), name)
    if version is None:
        return None
    try:
        return load_model(name, version)
    except ModelRefused as refused:
        log.warning(f"training {name} without the previous champion: {refused}")
        return None


def train_cluster_model(
    features: pd.DataFrame,
    population: pd.Series,
    params: ClusterParams | None = None,
    planted: pd.DataFrame | None = None,
) -> ClusterTraining:
    """Fit the clustering (ids matched to the champion's clusters), log and register it, gate the champion on the
    holdout users' mean assignment confidence. `planted` (user_id, persona: the demo generator's truth, when the
    data is generated) adds the adjusted Rand index against it, over all users and by band of history."""
    params = params or ClusterParams()
    as_of = as_of_of(features)
    previous = _champion_or_none(CLUSTER_MODEL)
    result = train_clustering(
        features, population, params, previous if isinstance(previous, BehaviourClusterer) else None
    )
    holdout = features[features["user_id"].isin(result.holdout_users)]
    scores = result.scores
    assignments = result.assignments
    metrics = {
        "holdout_confidence": result.holdout_confidence,
        "n_clusters": result.k,
        "users": len(assignments),
        "training_users": len(result.training_frame),
        "low_data_users": int(assignments["is_low_data"].sum()),
        "mean_confidence": float(assignments["confidence"].mean()),
        **{f"{column}_{r.algorithm}_k{r.k}": getattr(r, column) for r in scores.itertuples() for column in
           ("calinski_harabasz", "silhouette", "davies_bouldin", "bic", "confidence")},
    }  # fmt: skip
    chosen = scores[(scores["algorithm"] == result.algorithm) & (scores["k"] == result.k)].iloc[0]
    metrics |= {c: chosen[c] for c in ("calinski_harabasz", "silhouette", "davies_bouldin", "bic")}
    agreement = planted_agreement(assignments, features, planted) if planted is not None and len(planted) else {}
    metrics |= agreement
    model = result.model
    outcome = publish(
        name=CLUSTER_MODEL,
        model=model,
        input_example=features[cluster_inputs(model, features)].head(5),
        params={
            "algorithm": result.algorithm,
            "k": result.k,
            "selection": "per k the start with the smaller history-aware within-cluster distance, then the highest "
            "Calinski-Harabasz index over the training users",
            "rate_features": ",".join(model.rate_features),
            "mix_features": len(model.mix_features),
            "low_data_events": params.low_data_events,
            "k_range": f"{params.k_min}-{params.k_max}",
            "fit_users": params.fit_users,
            "holdout_share": params.holdout_share,
            "cluster_names": "; ".join(f"{i}={n}" for i, n in sorted(model.names.items())),
        },
        metrics=metrics,
        data_version=data_version(result.training_frame, as_of),
        metric="confidence",
        candidate_score=result.holdout_confidence,
        score_champion=lambda champion: holdout_confidence(champion, holdout),
        reference=result.training_frame,
        figures={
            "selection_by_k": plots.selection_by_k(scores),
            "cluster_profiles": plots.cluster_profiles(result.profiles, [*RATE_FEATURES, *model.mix_features]),
        },
        tables={"k_selection": scores, "cluster_profiles": result.profiles},
    )
    return ClusterTraining(result, outcome, agreement)


def cluster_inputs(model: BehaviourClusterer, features: pd.DataFrame) -> list[str]:
    """The columns a clustering model reads from a features frame (those present)."""
    weights = [c for c in features.columns if str(c).startswith(WEIGHT_PREFIX)]
    return [c for c in (*model.features, *weights, MIX_EVENTS) if c in features.columns]


def train_churn_model(snapshots: pd.DataFrame, params: ChurnParams | None = None) -> ChurnTraining:
    """Compare, calibrate and test the churn models, log and register the winner, gate the champion on the
    holdout ROC AUC."""
    params = params or ChurnParams()
    if snapshots.empty:
        raise NotEnoughData("no churn snapshots: no user was active before any past cutoff")
    result = train_churn(snapshots, params)
    holdout = result.split.holdout
    x_holdout, y_holdout = holdout[list(CHURN_FEATURES)], holdout["is_churned"].astype(int).to_numpy()
    cv = result.cv_scores.groupby("family")[["roc_auc", "pr_auc"]].mean()
    metrics = {
        **{f"holdout_{k}": v for k, v in result.holdout_metrics.items()},
        "threshold": result.threshold,
        "training_rows": len(result.training_frame),
        "holdout_users": len(holdout),
        **{f"cv_roc_auc_{family}": row.roc_auc for family, row in cv.iterrows()},
        **{f"cv_pr_auc_{family}": row.pr_auc for family, row in cv.iterrows()},
    }
    as_of = str(pd.Timestamp(snapshots["as_of"].max()))
    outcome = publish(
        name=CHURN_MODEL,
        model=result.model,
        input_example=x_holdout.head(5),
        params={
            "model_family": result.model_family,
            "calibration": result.calibration_method,
            "churn_window_days": params.churn_window_days,
            "cv_folds": len(result.cv_scores["fold"].unique()),
            "holdout_cutoff": str(result.split.holdout_cutoff),
            "training_cutoffs": ",".join(sorted({str(c.date()) for c in result.training_frame["cutoff_at"]})),
            "risk_tiers": "low<0.3<=medium<0.6<=high",
            "importance_rows": result.importance_rows,
        },
        metrics=metrics,
        data_version=data_version(result.training_frame, as_of),
        metric="roc_auc",
        candidate_score=result.holdout_metrics["roc_auc"],
        score_champion=lambda champion: roc_auc_score(y_holdout, champion.predict_proba(x_holdout)[:, 1]),
        reference=result.training_frame[list(CHURN_FEATURES)],
        figures={
            "roc": plots.roc(result.holdout_labels, result.holdout_probabilities, result.holdout_metrics["roc_auc"]),
            "calibration": plots.calibration(result.calibration),
            "feature_importance": plots.importance(result.importance),
        },
        tables={"cv_scores": result.cv_scores, "calibration": result.calibration, "importance": result.importance},
        predict_fn="predict_proba",
    )
    return ChurnTraining(result, outcome)


@dataclass
class RecommendationTraining:
    metrics: dict[str, float]
    comparison: pd.DataFrame  # metric, model (item_item / popularity), value on the holdout
    outcome: PublishOutcome


def train_recommendation_model(
    interactions: pd.DataFrame, segments: pd.DataFrame, params: RecommendationParams | None = None
) -> RecommendationTraining:
    """Fit item-item recommendations on the interactions before the last `holdout_days`, judge them on the
    products users first touched after (precision@n, recall@n, coverage, beside the popularity baseline and for
    users new in the holdout), log and register the model, gate the champion on holdout precision@n."""
    params = params or RecommendationParams()
    if interactions.empty:
        raise NotEnoughData("no product interactions (no product event names a product_id)")
    split = split_by_time(interactions, params.holdout_days)
    if split.train.empty or split.test.empty:
        raise NotEnoughData(
            f"product interactions span too few days for a {params.holdout_days}-day holdout "
            f"({len(split.train)} rows before {split.cutoff.date()}, {len(split.test)} new ones after)"
        )
    model = ItemItemRecommender(params.neighbours, params.n, params.max_products).fit(split.train, segments)
    test_users = np.array(sorted(split.test["user_id"].unique()), dtype=str)
    catalogue = len(model.items_)
    recommended = model.recommend(split.train, segments, test_users)
    ours = evaluate(recommended, split.test, catalogue, params.n)
    baseline = evaluate(popularity_recommendations(split.train, test_users, params.n), split.test, catalogue,
                        params.n)  # fmt: skip
    # users with no interaction before the cutoff (an index lookup: numpy's setdiff1d compares object arrays pairwise)
    new_users = test_users[~pd.Index(test_users).isin(pd.Index(split.train["user_id"].unique()))]
    new_test = split.test[split.test["user_id"].isin(new_users)]
    cold = evaluate(recommended[recommended["user_id"].isin(new_users)], new_test, catalogue, params.n)
    cold_baseline = evaluate(popularity_recommendations(split.train, new_users, params.n), new_test, catalogue,
                             params.n)  # fmt: skip
    precision = f"precision_at_{params.n}"
    recall = f"recall_at_{params.n}"
    metrics = {
        **{f"holdout_{k}": v for k, v in ours.items() if k != "test_users"},
        **{f"baseline_{k}": v for k, v in baseline.items() if k != "test_users"},
        "precision_lift": ours[precision] / baseline[precision] if baseline[precision] else float("nan"),
        f"cold_start_{precision}": cold[precision],
        f"cold_start_baseline_{precision}": cold_baseline[precision],
        "cold_start_test_users": cold["test_users"],
        "test_users": ours["test_users"],
        "training_users": float(split.train["user_id"].nunique()),
        "products": float(catalogue),
        "products_left_out": float(split.train["product_id"].nunique() - catalogue),
        "segments": float(len(model.segments_)),
    }
    comparison = pd.DataFrame(
        [(metric, name, result[metric]) for metric in (precision, recall, "coverage")
         for name, result in (("item_item", ours), ("popularity", baseline))],
        columns=["metric", "model", "value"],
    )  # fmt: skip
    test = split.test

    def champion_precision(champion: object) -> float:
        picks = champion.recommend(split.train, segments, test_users, params.n)  # type: ignore[attr-defined]
        return evaluate(picks, test, catalogue, params.n)[precision]

    as_of = str(pd.Timestamp(interactions["event_at"].max()))
    example = split.train[split.train["user_id"].isin(split.train["user_id"].unique()[:3])]
    outcome = publish(
        name=RECOMMENDATION_MODEL,
        model=model,
        input_example=example[["user_id", "product_id", "weight"]].head(20),
        params={
            "method": "item-item co-occurrence, cosine similarity of log-damped interaction weights",
            "cold_start": "popularity within the user's segment (ml.user_clusters cluster_name)",
            "neighbours": params.neighbours,
            "n": params.n,
            "holdout_days": params.holdout_days,
            "holdout_cutoff": str(split.cutoff),
            "max_products": params.max_products,
        },
        metrics=metrics,
        data_version=data_version(split.train, as_of),
        metric=precision,
        candidate_score=ours[precision],
        score_champion=champion_precision,
        reference=split.train,
        figures={"holdout_lift": plots.recommendation_lift(comparison)},
        tables={"holdout_comparison": comparison},
    )
    return RecommendationTraining(metrics, comparison, outcome)


def score_recommendations(
    interactions: pd.DataFrame, segments: pd.DataFrame, per_user: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """ml.recommendations rows (the champion's top `per_user` products for every user with interactions or a
    segment) and ml.popular_products rows (each segment's most touched products, and everyone's), and the version."""
    version = champion_version(client(), RECOMMENDATION_MODEL)
    if version is None:
        raise NotEnoughData(f"no {RECOMMENDATION_MODEL} champion in the registry yet")
    model = load_model(RECOMMENDATION_MODEL, version)
    if not isinstance(model, ItemItemRecommender):
        raise NotEnoughData(f"the {RECOMMENDATION_MODEL} champion (version {version}) is not an item-item model")
    users = np.union1d(interactions["user_id"].unique().astype(str), segments["user_id"].unique().astype(str))
    frame = model.recommend(interactions, segments, users, per_user)
    frame["model_version"] = version
    popular = model.popular(per_user)
    popular["model_version"] = version
    return frame, popular, version


def assign_clusters(features: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """ml.user_clusters rows from the champion clustering model (every user, with its confidence, the events its
    cluster rests on and whether they are too few), and its version."""
    version = champion_version(client(), CLUSTER_MODEL)
    if version is None:
        raise NotEnoughData(f"no {CLUSTER_MODEL} champion in the registry yet")
    model = load_model(CLUSTER_MODEL, version)  # ModelRefused (the asset fails with why) rather than run its code
    if not isinstance(model, BehaviourClusterer):
        raise NotEnoughData(f"the {CLUSTER_MODEL} champion (version {version}) predates per-user confidences")
    frame = model.assign(features)
    frame["cluster_id"] = frame["cluster_id"].astype(np.int32)
    frame["events"] = frame["events"].astype(np.int64)
    frame["model_version"] = version
    return frame, version


def score_churn(features: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """ml.churn_scores rows: every user active in the churn window before as_of, scored by the champion."""
    version = champion_version(client(), CHURN_MODEL)
    if version is None:
        raise NotEnoughData(f"no {CHURN_MODEL} champion in the registry yet")
    population = features[features["is_churn_scoring_population"].astype(bool)].reset_index(drop=True)
    probability = (
        load_model(CHURN_MODEL, version).predict_proba(population[list(CHURN_FEATURES)])[:, 1]
        if len(population)
        else []
    )
    probability = np.asarray(probability, dtype=float)
    frame = pd.DataFrame(
        {
            "user_id": population["user_id"],
            "churn_probability": probability,
            "risk_tier": risk_tier(probability),
            "as_of": pd.to_datetime(population["cutoff_at"]),
            "model_version": version,
        }
    )
    return frame, version


@dataclass
class DriftResult:
    model_name: str
    champion_version: str
    report: pd.DataFrame
    threshold: float

    @property
    def max_psi(self) -> float:
        return float(self.report["psi"].max()) if len(self.report) else 0.0

    @property
    def drifted_features(self) -> list[str]:
        return self.report.loc[self.report["drifted"], "feature"].tolist()


DRIFT_MIN_ROWS = 200  # PSI over ten bins is noise on fewer rows than this


def measure_drift(name: str, features: pd.DataFrame, threshold: float) -> DriftResult:
    """PSI and KS of today's model inputs against the champion's training sample."""
    reference = champion_reference(name)
    if reference is None:
        raise NotEnoughData(f"no {name} champion to compare against")
    version, training = reference
    if name == CHURN_MODEL:
        current = features[features["is_churn_scoring_population"].astype(bool)]
        columns: tuple[str, ...] = DRIFT_FEATURES
    else:
        current = features
        model_columns = [*RATE_FEATURES, *mix_columns(training)]
        columns = tuple(c for c in model_columns if c in training.columns and c in current.columns)
    if min(len(current), len(training)) < DRIFT_MIN_ROWS:
        raise NotEnoughData(
            f"{len(current)} current and {len(training)} training rows; drift needs {DRIFT_MIN_ROWS} on each side"
        )
    return DriftResult(name, version, drift_report(training, current, columns, threshold), threshold)
