"""CUPAC (control using predictions as covariates, Tang et al. 2020): per experiment, metric and exposed user, a
prediction of the user's metric from what was known before the exposure, the covariate that
marts.experiment_metric_results adjusts by as CUPED does by the metric's own pre-period value.

The model is a ridge regression (standardised inputs) on the churn model's 32 behavioural features as of the
exposure (intermediate.int_experiment_user_features, from events strictly before it), whether the user had any
history, and the metric's own pre-period value. It is fitted on both arms together and never sees the assignment,
and every input precedes the exposure, so the adjusted estimate stays unbiased whatever the model; it is
cross-fitted (each user predicted by a model fitted on the other folds), so that a user's own outcome never
shapes their covariate. A linear model, so that both engines give the same predictions to the last bits
(the Spark path streams the same rows through `python -m ml.experiment_cupac`).

An experiment and metric with fewer than MIN_USERS users, or whose metric does not vary, gets no prediction
(null): its estimate stays CUPED's or the raw one.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.features import CHURN_FEATURES
from ml.script_transform import json_lines_in, json_lines_out

FOLDS = 5
MIN_USERS = 50
RIDGE_ALPHA = 1.0
COLUMNS = ["experiment_id", "metric", "user_id", "cupac_prediction"]
INPUT_COLUMNS = [
    "experiment_id", "metric", "user_id", "metric_value", "pre_period_value", "has_history", *CHURN_FEATURES,
]  # fmt: skip


def fold_of(user_id: str) -> int:
    """A user's fold: a stable hash of the id, the same on every machine and engine."""
    return int(hashlib.blake2b(str(user_id).encode(), digest_size=4).hexdigest(), 16) % FOLDS


# Inputs and outcomes are rounded to this many decimals before fitting: the engines compute some features (means,
# ratios) with different last bits, and rounding keeps those bits out of the predictions, which both must equal.
INPUT_DECIMALS = 6


def inputs(frame: pd.DataFrame) -> np.ndarray:
    """The model's inputs: the pre-period value, whether there is history, the 32 features; NaN and inf as 0."""
    columns = ["pre_period_value", "has_history", *CHURN_FEATURES]
    values = frame[columns].astype(float).to_numpy()
    return np.round(np.where(np.isfinite(values), values, 0.0), INPUT_DECIMALS)


def predict_group(group: pd.DataFrame) -> np.ndarray:
    """Cross-fitted predictions for one experiment and metric (rows in user_id order); NaN when too few users."""
    y = np.round(group["metric_value"].astype(float).to_numpy(), INPUT_DECIMALS)
    predictions = np.full(len(group), np.nan)
    if len(group) < MIN_USERS or not np.isfinite(y).all() or np.ptp(y) == 0:
        return predictions
    x = inputs(group)
    folds = np.array([fold_of(user) for user in group["user_id"]])
    for fold in range(FOLDS):
        held_out = folds == fold
        if not held_out.any() or held_out.all():
            continue
        model = make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA))
        model.fit(x[~held_out], y[~held_out])
        predictions[held_out] = model.predict(x[held_out])
    return predictions


def cupac_frame(users: pd.DataFrame) -> pd.DataFrame:
    """intermediate.int_experiment_cupac from exposed users' metric values joined with their features."""
    parts = []
    for _, group in users.groupby(["experiment_id", "metric"], sort=True):
        group = group.sort_values("user_id", kind="stable")
        try:
            predicted = predict_group(group)
        except (ValueError, np.linalg.LinAlgError):  # a degenerate group: no CUPAC, the others still get theirs
            predicted = np.full(len(group), np.nan)
        parts.append(group[["experiment_id", "metric", "user_id"]].assign(cupac_prediction=predicted))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    frame["cupac_prediction"] = pd.to_numeric(frame["cupac_prediction"]).astype("Float64")
    for column in ("experiment_id", "metric", "user_id"):
        frame[column] = frame[column].astype("string")
    return frame[COLUMNS]


def transform(lines: Iterable[str]) -> Iterator[str]:
    """Spark's script transform: user rows as JSON lines in, predictions as JSON lines out."""
    users = json_lines_in(lines, INPUT_COLUMNS)
    if users is not None:
        yield from json_lines_out(cupac_frame(users))


def main() -> None:
    """`python -m ml.experiment_cupac` over standard input and output."""
    for line in transform(sys.stdin):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
