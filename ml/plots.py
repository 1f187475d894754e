"""Pictures logged with each training run (PNG figures for MLflow)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve


def roc(labels: np.ndarray, probabilities: np.ndarray, auc: float) -> Figure:
    fpr, tpr, _ = roc_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"ROC AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Churn, time holdout")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def calibration(curve: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", title="Calibration, holdout")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def importance(frame: pd.DataFrame, top: int = 15) -> Figure:
    head = frame.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh(head["feature"], head["importance"], xerr=head["std"])
    ax.set(xlabel="drop in holdout ROC AUC when shuffled", title="Permutation importance")
    fig.tight_layout()
    return fig


def selection_by_k(scores: pd.DataFrame) -> Figure:
    """The criteria of every candidate by k: Calinski-Harabasz (what chooses), and silhouette, Davies-Bouldin and
    mean assignment confidence beside it."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for algorithm, group in scores.groupby("algorithm"):
        left.plot(group["k"], group["calinski_harabasz"], marker="o", label=str(algorithm))
        right.plot(group["k"], group["silhouette"], marker="o", label=f"{algorithm} silhouette")
        right.plot(group["k"], group["davies_bouldin"], marker="x", linestyle=":", label=f"{algorithm} Davies-Bouldin")
        right.plot(group["k"], group["confidence"], marker="s", linestyle="--", label=f"{algorithm} confidence")
    left.set(xlabel="clusters k", title="Calinski-Harabasz (highest chosen)")
    right.set(xlabel="clusters k", title="Silhouette, Davies-Bouldin, mean confidence")
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cluster_profiles(profiles: pd.DataFrame, features: list[str]) -> Figure:
    values = profiles[features].to_numpy(float)
    z = (values - values.mean(axis=0)) / np.where(values.std(axis=0) > 0, values.std(axis=0), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.45 * len(features)), 2 + 0.6 * len(profiles)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=35, ha="right", fontsize=8)
    labels = [
        f"{i}: {n} ({u})"
        for i, n, u in zip(profiles["cluster_id"], profiles["cluster_name"], profiles["users"], strict=True)
    ]
    ax.set_yticks(range(len(profiles)), labels, fontsize=8)
    for (row, col), value in np.ndenumerate(values):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="standardised mean")
    ax.set_title("Cluster profiles")
    fig.tight_layout()
    return fig


def recommendation_lift(comparison: pd.DataFrame) -> Figure:
    """Holdout precision, recall and coverage of the model beside the popularity baseline (columns metric, model,
    value)."""
    metrics = list(dict.fromkeys(comparison["metric"]))
    models = list(dict.fromkeys(comparison["model"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3 * len(metrics), 3.5))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        rows = comparison[comparison["metric"] == metric].set_index("model").reindex(models)
        ax.bar(models, rows["value"], color=["#4c78a8", "#bab0ac", "#f58518"][: len(models)])
        ax.set(title=metric, ylim=(0, max(float(rows["value"].max()) * 1.2, 1e-9)))
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle("Recommendations, time holdout")
    fig.tight_layout()
    return fig
