"""Population stability index and Kolmogorov-Smirnov on tiny samples worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.drift import EMPTY_BIN_SHARE, drift_report, psi


def test_psi_by_hand():
    # reference 1..10 in two bins cut at its median 5.5: shares 0.5 / 0.5; current [1, 2, 3, 6]: 0.75 / 0.25
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi(np.arange(1, 11), np.array([1, 2, 3, 6]), bins=2) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_of_identical_samples_is_zero_and_an_empty_bin_stays_finite():
    values = np.arange(100.0)
    assert psi(values, values) == pytest.approx(0.0)
    # every current value falls in the lower bin: the empty upper bin counts as EMPTY_BIN_SHARE
    empty = EMPTY_BIN_SHARE
    expected = (1 - 0.5) * math.log(1 / 0.5) + (empty - 0.5) * math.log(empty / 0.5)
    assert psi(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), bins=2) == pytest.approx(expected)


def test_psi_needs_values():
    with pytest.raises(ValueError, match="both sides"):
        psi(np.array([]), np.array([1.0]))


def test_drift_report_by_hand():
    # 'level' continuous (20 distinct values): current is shifted up by 10, so the KS statistic is 10/20 = 0.5
    reference = pd.DataFrame({"level": np.arange(20.0), "flag": [0, 1] * 10})
    current = pd.DataFrame({"level": np.arange(10.0, 30.0), "flag": [0, 1] * 10})
    report = drift_report(reference, current, ["level", "flag"], psi_threshold=0.25).set_index("feature")
    assert report.loc["level", "ks_statistic"] == pytest.approx(0.5)
    # deciles of 0..19 -> ten bins of two values; current puts 10 values in the top bin and 2 in each of bins 5-9
    ref_share = np.full(10, 0.1)
    cur_share = np.array([EMPTY_BIN_SHARE] * 5 + [0.1] * 4 + [0.6])
    expected = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    assert report.loc["level", "psi"] == pytest.approx(expected)
    assert bool(report.loc["level", "drifted"])
    # a two-valued feature gets a PSI but no KS; the same mix does not drift
    assert np.isnan(report.loc["flag", "ks_statistic"])
    assert report.loc["flag", "psi"] == pytest.approx(0.0) and not bool(report.loc["flag", "drifted"])
