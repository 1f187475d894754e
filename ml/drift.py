"""Drift of current features against a model's training data: population stability index and Kolmogorov-Smirnov."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

EMPTY_BIN_SHARE = 1e-4  # an empty bin counts as this share, so the logarithm stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index: sum over bins of (current - reference) * ln(current / reference), bins cut at
    the reference's quantiles (repeated edges merged, outer edges open)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError("psi needs values on both sides")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    ref_share = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    cur_share = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    ref_share = np.maximum(ref_share, EMPTY_BIN_SHARE)
    cur_share = np.maximum(cur_share, EMPTY_BIN_SHARE)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str] | tuple[str, ...], psi_threshold: float = 0.25
) -> pd.DataFrame:
    """One row per feature: PSI, KS statistic and p-value (for features with more than 10 distinct values), and
    whether the PSI is over the threshold."""
    rows = []
    for feature in features:
        ref, cur = reference[feature].dropna().to_numpy(float), current[feature].dropna().to_numpy(float)
        value = psi(ref, cur)
        continuous = len(np.unique(ref)) > 10
        ks = ks_2samp(ref, cur) if continuous else None
        rows.append(
            {
                "feature": feature,
                "psi": value,
                "ks_statistic": float(ks.statistic) if ks else np.nan,
                "ks_p_value": float(ks.pvalue) if ks else np.nan,
                "drifted": value > psi_threshold,
            }
        )
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
