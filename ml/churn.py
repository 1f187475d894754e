"""Churn: logistic regression, random forest and gradient boosting compared by time-aware cross-validation on
the point-in-time snapshots, the winner calibrated and measured on a later, purged time holdout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, precision_recall_curve, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.features import CHURN_FEATURES, NotEnoughData

RISK_TIERS = (("low", 0.0), ("medium", 0.3), ("high", 0.6))  # tier from its lower bound of churn probability


@dataclass(frozen=True)
class ChurnParams:
    """Snapshot use and sizes below which churn is not trained (too little to learn or to test)."""

    churn_window_days: int = 30  # training cutoffs end at least this long before the holdout cutoff (no overlap)
    cv_folds: int = 3
    min_training_rows: int = 100
    min_holdout_rows: int = 30
    min_class_rows: int = 10
    random_state: int = 0
    # permutation importance is estimated on at most this many holdout users drawn at random (0: all of them)
    importance_rows: int = 10_000


def candidates(random_state: int = 0) -> dict[str, Pipeline]:
    """The three model families compared."""
    return {
        "logistic_regression": Pipeline(
            [
                ("log", FunctionTransformer(np.log1p)),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=1.0, max_iter=2000)),
            ]
        ),
        "random_forest": Pipeline(
            [
                (
                    "model",
                    RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=-1, random_state=random_state),
                )
            ]
        ),
        "gradient_boosting": Pipeline(
            [
                (
                    "model",
                    HistGradientBoostingClassifier(
                        max_iter=100, learning_rate=0.1, max_leaf_nodes=15, random_state=random_state
                    ),
                )
            ]
        ),
    }


def risk_tier(probability: np.ndarray) -> np.ndarray:
    """low / medium / high from the calibrated churn probability."""
    tiers = np.full(len(probability), RISK_TIERS[0][0], dtype=object)
    for name, lower in RISK_TIERS[1:]:
        tiers[probability >= lower] = name
    return tiers


@dataclass
class TimeSplit:
    """Training snapshots, the holdout snapshot (the latest cutoff) and the cutoffs between them left out."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_cutoff: pd.Timestamp
    purged_cutoffs: list[pd.Timestamp]


def time_split(snapshots: pd.DataFrame, params: ChurnParams) -> TimeSplit:
    """The latest cutoff is the holdout; training uses cutoffs at least a churn window earlier, so no training
    label overlaps the holdout's period."""
    if snapshots.empty:
        raise NotEnoughData("no churn snapshots: no user was active before any cutoff")
    cutoffs = sorted(snapshots["cutoff_at"].unique())
    holdout_cutoff = pd.Timestamp(cutoffs[-1])
    limit = holdout_cutoff - pd.Timedelta(days=params.churn_window_days)
    train = snapshots[snapshots["cutoff_at"] <= limit]
    purged = [pd.Timestamp(c) for c in cutoffs[:-1] if pd.Timestamp(c) > limit]
    return TimeSplit(train, snapshots[snapshots["cutoff_at"] == holdout_cutoff], holdout_cutoff, purged)


def _check(frame: pd.DataFrame, what: str, min_rows: int, min_class: int) -> None:
    churned = int(frame["is_churned"].sum())
    if len(frame) < min_rows:
        raise NotEnoughData(f"{what} has {len(frame)} rows; churn needs at least {min_rows}")
    if min(churned, len(frame) - churned) < min_class:
        raise NotEnoughData(
            f"{what} has {churned} churned and {len(frame) - churned} retained users; each class needs {min_class}"
        )


def time_folds(train: pd.DataFrame, params: ChurnParams) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: validate on each of the latest cutoffs, train on cutoffs a churn window before."""
    cutoffs = sorted(train["cutoff_at"].unique())
    folds = []
    for validation_cutoff in cutoffs[::-1]:
        limit = pd.Timestamp(validation_cutoff) - pd.Timedelta(days=params.churn_window_days)
        fit = np.flatnonzero((train["cutoff_at"] <= limit).to_numpy())
        validate = np.flatnonzero((train["cutoff_at"] == validation_cutoff).to_numpy())
        labels_fit = train["is_churned"].to_numpy()[fit]
        labels_validate = train["is_churned"].to_numpy()[validate]
        if len(set(labels_fit.tolist())) == 2 and len(set(labels_validate.tolist())) == 2:
            folds.append((fit, validate))
        if len(folds) == params.cv_folds:
            break
    return folds[::-1]


@dataclass
class ChurnResult:
    model: CalibratedClassifierCV
    model_family: str
    calibration_method: str
    cv_scores: pd.DataFrame  # family, fold, validation_cutoff, roc_auc, pr_auc
    threshold: float
    holdout_metrics: dict[str, float]
    holdout_probabilities: np.ndarray
    holdout_labels: np.ndarray
    calibration: pd.DataFrame  # mean_predicted, observed_rate
    importance: pd.DataFrame  # feature, importance, std
    importance_rows: int  # holdout users the importance was estimated on
    split: TimeSplit
    training_frame: pd.DataFrame


def best_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability cut that maximises F1 (chosen on out-of-fold predictions, applied to the holdout)."""
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))]) if len(thresholds) else 0.5


def holdout_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score and F1 at the threshold on one labelled set."""
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "f1": float(f1_score(labels, probabilities >= threshold)),
        "churn_rate": float(np.mean(labels)),
    }


def importance_sample(rows: int, limit: int, random_state: int) -> np.ndarray:
    """Positions of the holdout rows permutation importance is estimated on: all of them when `limit` is 0 or
    they are no more than `limit`, else `limit` of them drawn at random (in order)."""
    if limit <= 0 or rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(random_state).choice(rows, size=limit, replace=False))


def train_churn(snapshots: pd.DataFrame, params: ChurnParams | None = None) -> ChurnResult:
    """Compare the families by time-aware CV, calibrate the best on all training cutoffs, test on the holdout."""
    params = params or ChurnParams()
    split = time_split(snapshots, params)
    _check(split.train, "training snapshots", params.min_training_rows, params.min_class_rows)
    _check(split.holdout, "holdout snapshot", params.min_holdout_rows, max(1, params.min_class_rows // 2))
    train = split.train.reset_index(drop=True)
    x, y = train[list(CHURN_FEATURES)], train["is_churned"].astype(int).to_numpy()
    folds = time_folds(train, params)
    if not folds:
        raise NotEnoughData("no time-ordered fold has both classes on each side; add cutoffs or data")

    rows, out_of_fold = [], {}
    for family, pipeline in candidates(params.random_state).items():
        predictions = np.full(len(train), np.nan)
        for number, (fit, validate) in enumerate(folds):
            fitted = clone(pipeline).fit(x.iloc[fit], y[fit])
            predictions[validate] = fitted.predict_proba(x.iloc[validate])[:, 1]
            rows.append(
                {
                    "family": family,
                    "fold": number,
                    "validation_cutoff": str(train["cutoff_at"].iloc[validate[0]]),
                    "roc_auc": roc_auc_score(y[validate], predictions[validate]),
                    "pr_auc": average_precision_score(y[validate], predictions[validate]),
                }
            )
        out_of_fold[family] = predictions
    cv_scores = pd.DataFrame(rows)
    family = str(cv_scores.groupby("family")["roc_auc"].mean().idxmax())

    method = "isotonic" if len(train) >= 5000 else "sigmoid"
    model = CalibratedClassifierCV(candidates(params.random_state)[family], method=method, cv=3).fit(x, y)
    validated = ~np.isnan(out_of_fold[family])
    threshold = best_f1_threshold(y[validated], out_of_fold[family][validated])

    holdout = split.holdout.reset_index(drop=True)
    x_holdout, y_holdout = holdout[list(CHURN_FEATURES)], holdout["is_churned"].astype(int).to_numpy()
    probabilities = model.predict_proba(x_holdout)[:, 1]
    observed, predicted = calibration_curve(y_holdout, probabilities, n_bins=10, strategy="quantile")
    rows = importance_sample(len(holdout), params.importance_rows, params.random_state)
    importance = permutation_importance(
        model,
        x_holdout.iloc[rows],
        y_holdout[rows],
        scoring="roc_auc",
        n_repeats=2,
        random_state=params.random_state,
        n_jobs=1,
    )
    return ChurnResult(
        model=model,
        model_family=family,
        calibration_method=method,
        cv_scores=cv_scores,
        threshold=threshold,
        holdout_metrics=holdout_metrics(y_holdout, probabilities, threshold),
        holdout_probabilities=probabilities,
        holdout_labels=y_holdout,
        calibration=pd.DataFrame({"mean_predicted": predicted, "observed_rate": observed}),
        importance=pd.DataFrame(
            {
                "feature": list(CHURN_FEATURES),
                "importance": importance.importances_mean,
                "std": importance.importances_std,
            }
        ).sort_values("importance", ascending=False, ignore_index=True),
        importance_rows=len(rows),
        split=split,
        training_frame=train[["user_id", "cutoff_at", "is_churned", *CHURN_FEATURES]],
    )


def score_users(model: CalibratedClassifierCV, features: pd.DataFrame) -> pd.DataFrame:
    """Churn probability and risk tier of every user in the scoring population (active in the churn window)."""
    population = features[features["is_churn_scoring_population"].astype(bool)].reset_index(drop=True)
    if population.empty:
        return pd.DataFrame({"user_id": [], "churn_probability": [], "risk_tier": []})
    probability = model.predict_proba(population[list(CHURN_FEATURES)])[:, 1]
    return pd.DataFrame(
        {"user_id": population["user_id"], "churn_probability": probability, "risk_tier": risk_tier(probability)}
    )
