"""ml/experiment_stats.py: each estimator against statsmodels/scipy or a hand computation, and by simulation with
fixed seeds (sizes that run in seconds; bench/experiment_stats.py runs the same at full size)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from ml.experiment_simulation import (
    aa_peeking_false_positives,
    cupac_coverage,
    cuped_coverage,
    false_discovery_rate,
)
from ml.experiment_stats import (
    Moments,
    adjust,
    compare,
    confidence_sequence,
    cuped_theta,
    fixed_interval,
    power_plan,
    two_sided_p,
)


def test_raw_difference_is_welchs_z_interval_as_statsmodels_gives_it() -> None:
    rng = np.random.default_rng(1)
    control, treatment = rng.exponential(10, 400), rng.exponential(11, 300)
    result = compare(Moments.of(control), Moments.of(treatment))
    expected = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    low, high = expected.zconfint_diff(alpha=0.05, usevar="unequal")
    assert fixed_interval(result.difference, result.difference_se) == pytest.approx((low, high), rel=1e-9)
    assert two_sided_p(result.difference, result.difference_se) == pytest.approx(
        expected.ztest_ind(usevar="unequal")[1], rel=1e-9
    )


def test_lift_and_ratio_metric_by_hand() -> None:
    """Control y = 1, 2, 3 (mean 2, variance 1); treatment y = 2, 4, 6 (mean 4, variance 4). Lift 4/2 - 1 = 1 with
    variance (4/3) / 4 + 16 (1/3) / 16 = 2/3. As a ratio metric with d = 1, 1, 2 and 1, 2, 1: control
    R = 6/4 = 1.5, var = (1 - 2 * 1.5 * 0.5 + 2.25 / 3) / ((4/3)^2 3) = 0.25 / 5.333... = 0.046875."""
    control = Moments.of(np.array([1.0, 2, 3]), d=np.array([1.0, 1, 2]))
    treatment = Moments.of(np.array([2.0, 4, 6]), d=np.array([1.0, 2, 1]))
    means = compare(control, treatment)
    assert means.lift == pytest.approx(1.0)
    assert means.lift_se**2 == pytest.approx(2 / 3)
    ratios = compare(control, treatment, ratio=True)
    assert ratios.control.value == pytest.approx(1.5)
    assert ratios.control.variance == pytest.approx(0.046875)
    assert ratios.treatment.value == pytest.approx(3.0)


def test_cuped_theta_is_the_pooled_regression_slope_and_narrows_the_interval() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(10, 3, 2000)
    y = 0.8 * x + rng.normal(0, 1, 2000)
    treated = np.arange(2000) % 2 == 1
    y[treated] += 0.3
    control, treatment = Moments.of(y[~treated], x[~treated]), Moments.of(y[treated], x[treated])
    slope = np.polyfit(x, y, 1)[0]
    assert cuped_theta(control, treatment) == pytest.approx(slope, rel=1e-9)
    raw, adjusted = compare(control, treatment), compare(control, treatment, cuped=True)
    assert adjusted.difference_se < 0.45 * raw.difference_se
    assert adjusted.variance_reduction == pytest.approx(1 - (adjusted.difference_se / raw.difference_se) ** 2)
    # close to the regression on treatment and x (which fits theta within arms)
    design = sm.add_constant(np.column_stack([treated.astype(float), x]))
    ols = sm.OLS(y, design).fit()
    assert adjusted.difference == pytest.approx(ols.params[1], abs=0.01)
    assert adjusted.difference_se == pytest.approx(ols.bse[1], rel=0.02)


def test_confidence_sequence_by_hand_and_wider_than_the_fixed_interval() -> None:
    """n = 5000 (the tuning point), se = 0.01, alpha = 0.05: sigma = 0.01 sqrt(5000) = 0.7071;
    rho^2 = (2 ln 20 + ln(2 ln 20 + 1)) / 5000 = (5.9915 + 1.9445) / 5000 = 0.0015872;
    half = 0.7071 sqrt(2 (7.936 + 1) / (5000^2 0.0015872) ln(sqrt(8.936) / 0.05)) = 0.7071 sqrt(4.5040e-4 * 4.0908)
    = 0.030352."""
    low, high = confidence_sequence(0.0, 0.01, 5000)
    assert high == pytest.approx(0.030352, rel=1e-4)
    assert low == pytest.approx(-high)
    assert high > fixed_interval(0.0, 0.01)[1]


def test_multiple_testing_matches_statsmodels_and_widens_intervals() -> None:
    p_values = [0.001, 0.01, 0.02, 0.04, math.nan, 0.3]
    holm = adjust(p_values, "holm")
    assert holm.p_values[:4] == pytest.approx([0.005, 0.04, 0.06, 0.08])
    assert math.isnan(holm.p_values[4])
    assert holm.rejected == [True, True, False, False, False, False]
    assert holm.interval_alpha == pytest.approx(0.01)
    tested = [p for p in p_values if not math.isnan(p)]
    assert [p for p in holm.p_values if not math.isnan(p)] == pytest.approx(multipletests(tested, method="holm")[1])
    bh = adjust(p_values, "bh")
    # BH: p_(i) m / i, made monotone: 0.005, 0.025, 0.0333, 0.05, -, 0.3
    assert bh.p_values == pytest.approx([0.005, 0.025, 0.1 / 3, 0.05, math.nan, 0.3], nan_ok=True)
    assert bh.rejected == [True, True, True, True, False, False]
    assert bh.interval_alpha == pytest.approx(4 * 0.05 / 5)


def test_power_plan_agrees_with_itself_and_statsmodels() -> None:
    rng = np.random.default_rng(3)
    control, treatment = Moments.of(rng.binomial(1, 0.1, 3000)), Moments.of(rng.binomial(1, 0.1, 3000))
    plan = power_plan(control, treatment, target_relative=0.2, days_running=10)
    again = power_plan(control, treatment, target_relative=plan.mde_relative, days_running=10)
    assert again.users_needed == pytest.approx(6000, rel=1e-4)  # the solver's tolerance
    # 20% of ~10% needs ~3,600 per arm at 80% power: more than the 6,000 there are, at 600 a day
    assert 6500 < plan.users_needed < 8000
    assert plan.days_left == pytest.approx((plan.users_needed - 6000) / 600)


def test_reading_daily_inflates_the_fixed_horizon_false_positives_but_not_the_sequential_ones() -> None:
    rates = aa_peeking_false_positives(experiments=200, days=20, users_per_day=100, seed=7)
    assert rates.sequential <= 0.05
    assert rates.fixed_read_daily > 0.10
    assert rates.fixed_read_once <= 0.08


def test_cuped_covers_the_planted_effect_at_the_nominal_rate_with_a_narrower_interval() -> None:
    result = cuped_coverage(experiments=1000, users=400, effect=0.5, correlation=0.7, seed=8)
    assert 0.93 <= result.cuped_coverage <= 0.97  # 0.95 +- 2.9 standard errors of 1,000 trials
    assert result.width_ratio < 0.8  # 1 - 0.7^2 = 0.51 of the variance: about 0.71 of the width


def test_cupac_covers_the_planted_effect_and_narrows_cupeds_interval() -> None:
    """The metric's variance is 0.09 (pre-period) + 0.61 (three features) + 0.64 (noise) = 1.34: CUPED can remove
    0.09 / 1.34 = 7%, CUPAC up to 0.70 / 1.34 = 52% (less what a ridge on 34 inputs and 400 users misses)."""
    result = cupac_coverage(experiments=200, users=400, effect=0.3, seed=10)
    assert 0.90 <= result.cupac_coverage <= 0.99  # 0.95 +- 3 standard errors of 200 trials
    assert result.cuped_variance_reduction == pytest.approx(0.07, abs=0.03)
    assert 0.35 < result.cupac_variance_reduction < 0.55
    assert result.width_ratio < 0.8


def test_benjamini_hochberg_keeps_the_false_discovery_rate() -> None:
    result = false_discovery_rate(families=1000, tests=20, planted=5, effect=3.0, seed=9)
    assert result.bh_fdr <= 0.05 + 0.01  # 3 standard errors at 1,000 families
    assert result.holm_fwer <= 0.05 + 0.02
    assert result.unadjusted_fdr > 0.1
    assert result.bh_power > result.holm_power
