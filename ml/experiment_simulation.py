"""Simulations that check ml/experiment_stats.py's error rates with fixed seeds: the tests run them small, and
`python -m bench.experiment_stats` at full size (1,000 experiments)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ml.experiment_cupac import INPUT_COLUMNS, cupac_frame
from ml.experiment_stats import (
    CovariateSums,
    Moments,
    adjust,
    compare,
    confidence_sequence,
    fixed_interval,
    regression_adjusted,
)
from ml.features import CHURN_FEATURES


@dataclass(frozen=True)
class PeekingRates:
    """Share of A/A experiments declared significant at least once."""

    fixed_read_daily: float
    fixed_read_once: float
    sequential: float


def _excludes_zero(interval: tuple[float, float]) -> bool:
    return interval[0] > 0 or interval[1] < 0


def aa_peeking_false_positives(
    experiments: int, days: int, users_per_day: int, seed: int, rate: float = 0.1
) -> PeekingRates:
    """A/A experiments on a conversion metric (both arms convert at `rate`), read every day: how often the
    fixed-horizon interval read daily, the same read once at the end, and the confidence sequence read daily
    exclude zero at least once."""
    rng = np.random.default_rng(seed)
    daily_hits = once_hits = sequential_hits = 0
    for _ in range(experiments):
        conversions = rng.binomial(users_per_day, rate, size=(days, 2)).cumsum(axis=0)
        fixed_any = sequential_any = False
        for day in range(days):
            n = users_per_day * (day + 1)
            # conversions are 0/1, so the sum of squares is the sum
            control = Moments(n, float(conversions[day, 0]), float(conversions[day, 0]))
            treatment = Moments(n, float(conversions[day, 1]), float(conversions[day, 1]))
            result = compare(control, treatment)
            fixed = _excludes_zero(fixed_interval(result.difference, result.difference_se))
            fixed_any |= fixed
            sequential_any |= _excludes_zero(confidence_sequence(result.difference, result.difference_se, 2 * n))
        daily_hits += fixed_any
        once_hits += fixed
        sequential_hits += sequential_any
    return PeekingRates(daily_hits / experiments, once_hits / experiments, sequential_hits / experiments)


@dataclass(frozen=True)
class CupedCoverage:
    raw_coverage: float
    cuped_coverage: float
    width_ratio: float  # mean CUPED interval width / raw width
    variance_reduction: float  # mean reported reduction


def cuped_coverage(experiments: int, users: int, effect: float, correlation: float, seed: int) -> CupedCoverage:
    """Experiments whose metric correlates with its pre-period value at `correlation` and whose treatment adds
    `effect`: how often the raw and the CUPED 95% intervals cover `effect`, and how much narrower CUPED's is."""
    rng = np.random.default_rng(seed)
    raw_hits = cuped_hits = 0
    ratios, reductions = [], []
    noise = np.sqrt(1 - correlation**2)
    for _ in range(experiments):
        pre = rng.normal(5, 1, users)
        treated = rng.random(users) < 0.5
        metric = 5 + correlation * (pre - 5) + noise * rng.normal(0, 1, users) + effect * treated
        control = Moments.of(metric[~treated], pre[~treated])
        treatment = Moments.of(metric[treated], pre[treated])
        raw, adjusted = compare(control, treatment), compare(control, treatment, cuped=True)
        raw_low, raw_high = fixed_interval(raw.difference, raw.difference_se)
        low, high = fixed_interval(adjusted.difference, adjusted.difference_se)
        raw_hits += raw_low <= effect <= raw_high
        cuped_hits += low <= effect <= high
        ratios.append((high - low) / (raw_high - raw_low))
        reductions.append(adjusted.variance_reduction)
    return CupedCoverage(
        raw_hits / experiments, cuped_hits / experiments, float(np.mean(ratios)), float(np.mean(reductions))
    )


@dataclass(frozen=True)
class CupacCoverage:
    cuped_coverage: float
    cupac_coverage: float
    width_ratio: float  # mean CUPAC interval width / CUPED's
    cuped_variance_reduction: float
    cupac_variance_reduction: float


def cupac_coverage(experiments: int, users: int, effect: float, seed: int) -> CupacCoverage:
    """Experiments whose metric depends on the pre-period value (correlation 0.3) and on three of the 32
    behavioural features (the rest noise), with `effect` planted: how often CUPED's and CUPAC's (the real
    cross-fitted ridge of ml/experiment_cupac.py, then the adjustment by both covariates) 95% intervals cover it,
    and how much narrower CUPAC's is."""
    rng = np.random.default_rng(seed)
    cuped_hits = cupac_hits = 0
    ratios, cuped_reductions, cupac_reductions = [], [], []
    user_ids = [f"u{i:06d}" for i in range(users)]
    for _ in range(experiments):
        features = rng.normal(size=(users, len(CHURN_FEATURES)))
        pre = rng.normal(size=users)
        treated = rng.random(users) < 0.5
        signal = 0.3 * pre + features[:, :3] @ np.array([0.6, 0.4, 0.3])
        metric = 5 + signal + rng.normal(size=users) * 0.8 + effect * treated
        frame = pd.DataFrame(features, columns=list(CHURN_FEATURES)).assign(
            experiment_id="e", metric="m", user_id=user_ids, metric_value=metric, pre_period_value=pre,
            has_history=True,
        )  # fmt: skip
        predicted = cupac_frame(frame[INPUT_COLUMNS]).set_index("user_id")["cupac_prediction"]
        c = predicted.loc[user_ids].to_numpy(dtype=float)
        cuped = compare(Moments.of(metric[~treated], pre[~treated]), Moments.of(metric[treated], pre[treated]),
                        cuped=True)  # fmt: skip
        sums = [CovariateSums.of(metric[arm], np.column_stack([pre[arm], c[arm]])) for arm in (~treated, treated)]
        cupac = regression_adjusted(*sums)
        cuped_low, cuped_high = fixed_interval(cuped.difference, cuped.difference_se)
        low, high = fixed_interval(cupac.difference, cupac.difference_se)
        cuped_hits += cuped_low <= effect <= cuped_high
        cupac_hits += low <= effect <= high
        ratios.append((high - low) / (cuped_high - cuped_low))
        cuped_reductions.append(cuped.variance_reduction)
        cupac_reductions.append(cupac.variance_reduction)
    return CupacCoverage(
        cuped_hits / experiments, cupac_hits / experiments, float(np.mean(ratios)), float(np.mean(cuped_reductions)),
        float(np.mean(cupac_reductions)),
    )  # fmt: skip


@dataclass(frozen=True)
class DiscoveryRates:
    bh_fdr: float
    bh_power: float
    holm_fwer: float
    holm_power: float
    unadjusted_fdr: float


def false_discovery_rate(families: int, tests: int, planted: int, effect: float, seed: int) -> DiscoveryRates:
    """Families of `tests` z-tests (metrics x variants) of which `planted` have a true effect of `effect` standard
    errors: the false discovery rate and power of Benjamini-Hochberg, the family-wise error rate and power of Holm,
    and the false discovery rate with no correction."""
    rng = np.random.default_rng(seed)
    truth = np.arange(tests) < planted
    bh_fdp, bh_found, holm_errors, holm_found, raw_fdp = [], [], 0, [], []
    for _ in range(families):
        z = rng.normal(0, 1, tests) + effect * truth
        p_values = list(2 * stats.norm.sf(np.abs(z)))
        for method in ("bh", "holm"):
            rejected = np.array(adjust(p_values, method).rejected)
            false = int((rejected & ~truth).sum())
            if method == "bh":
                bh_fdp.append(false / max(int(rejected.sum()), 1))
                bh_found.append((rejected & truth).sum() / planted)
            else:
                holm_errors += false > 0
                holm_found.append((rejected & truth).sum() / planted)
        raw = np.array(p_values) < 0.05
        raw_fdp.append(int((raw & ~truth).sum()) / max(int(raw.sum()), 1))
    return DiscoveryRates(
        float(np.mean(bh_fdp)), float(np.mean(bh_found)), holm_errors / families, float(np.mean(holm_found)),
        float(np.mean(raw_fdp)),
    )  # fmt: skip
