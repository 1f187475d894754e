"""Estimators for experiment metrics from per-variant sums, so that SQL (on either engine) aggregates the users and
only a few numbers per variant and metric cross into Python.

- `Moments` holds a variant's sums for one metric: the metric y, its pre-exposure covariate x (CUPED) and, for
  ratio metrics, the denominator d.
- `compare` gives the treatment-minus-control difference and the relative lift with their standard errors, raw or
  CUPED-adjusted (theta pooled over both arms, as GrowthBook and Statsig do), for mean and ratio metrics (delta
  method).
- `fixed_interval` is the usual fixed-horizon interval; `confidence_sequence` the asymptotic always-valid one of
  Waudby-Smith et al. (2023), as GrowthBook ships it: valid however often it is read.
- `adjust` corrects p-values across metrics x variants (Holm or Benjamini-Hochberg, statsmodels) and widens the
  intervals to match (Bonferroni level for Holm; the false-coverage-rate level of Benjamini and Yekutieli (2005)
  for BH).
- `power_plan` gives the minimum detectable effect at the current sample and the users needed for a target one
  (statsmodels' two-sample z power).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

# GrowthBook's default tuning of the confidence sequence: tightest near this many users in all.
SEQUENTIAL_TUNING_USERS = 5000


@dataclass(frozen=True)
class Moments:
    """A variant's sums over its users for one metric: y the metric, x its pre-exposure value, d the denominator
    of a ratio metric (each user's own; 0 when the metric has none)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    sum_yd: float = 0.0

    @classmethod
    def of(cls, y: np.ndarray, x: np.ndarray | None = None, d: np.ndarray | None = None) -> Moments:
        """The sums of arrays of per-user values (tests and simulations; the marts sum in SQL)."""
        y = np.asarray(y, dtype=float)
        x = np.zeros_like(y) if x is None else np.asarray(x, dtype=float)
        d = np.zeros_like(y) if d is None else np.asarray(d, dtype=float)
        return cls(
            n=len(y), sum_y=y.sum(), sum_y2=(y * y).sum(), sum_x=x.sum(), sum_x2=(x * x).sum(),
            sum_xy=(x * y).sum(), sum_d=d.sum(), sum_d2=(d * d).sum(), sum_yd=(y * d).sum(),
        )  # fmt: skip

    def mean(self, total: float) -> float:
        return total / self.n

    def covariance(self, sum_ab: float, sum_a: float, sum_b: float) -> float:
        """Sample covariance of two per-user values from their sums (n - 1 in the denominator)."""
        if self.n < 2:
            return math.nan
        return (sum_ab - sum_a * sum_b / self.n) / (self.n - 1)


@dataclass(frozen=True)
class Arm:
    """One arm's estimate of the metric: its value (a mean, or a ratio of means) and that value's variance."""

    value: float
    variance: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric."""

    control: Arm
    treatment: Arm
    difference: float
    difference_se: float
    lift: float
    lift_se: float
    theta: float  # CUPED coefficient (0 without a covariate)
    variance_reduction: float  # 1 - adjusted / raw variance of the difference (0 without a covariate)

    @property
    def n(self) -> int:
        return self.control.n + self.treatment.n


def arm(moments: Moments, *, ratio: bool = False, theta: float = 0.0, x_centre: float = 0.0) -> Arm:
    """The arm's mean of y (or, for a ratio metric, sum y / sum d), CUPED-adjusted by `theta` around the pooled
    covariate mean `x_centre`, with the variance of that estimate (delta method for ratios)."""
    n = moments.n
    if n < 2:
        return Arm(math.nan, math.nan, n)
    var_y = moments.covariance(moments.sum_y2, moments.sum_y, moments.sum_y)
    var_x = moments.covariance(moments.sum_x2, moments.sum_x, moments.sum_x)
    cov_xy = moments.covariance(moments.sum_xy, moments.sum_x, moments.sum_y)
    mean_y, mean_x = moments.mean(moments.sum_y), moments.mean(moments.sum_x)
    if not ratio:
        value = mean_y - theta * (mean_x - x_centre)
        variance = (var_y + theta * theta * var_x - 2 * theta * cov_xy) / n
        return Arm(value, max(variance, 0.0), n)
    mean_d = moments.mean(moments.sum_d)
    if mean_d == 0:
        return Arm(math.nan, math.nan, n)
    var_d = moments.covariance(moments.sum_d2, moments.sum_d, moments.sum_d)
    cov_yd = moments.covariance(moments.sum_yd, moments.sum_y, moments.sum_d)
    value = mean_y / mean_d
    variance = (var_y - 2 * value * cov_yd + value * value * var_d) / (mean_d * mean_d * n)
    return Arm(value, max(variance, 0.0), n)


def cuped_theta(control: Moments, treatment: Moments) -> float:
    """Cov(x, y) / Var(x) over both arms' users (0 when x does not vary: the estimate is then the raw one)."""
    n = control.n + treatment.n
    if n < 3:
        return 0.0
    pooled = Moments(
        n=n, sum_y=control.sum_y + treatment.sum_y, sum_y2=control.sum_y2 + treatment.sum_y2,
        sum_x=control.sum_x + treatment.sum_x, sum_x2=control.sum_x2 + treatment.sum_x2,
        sum_xy=control.sum_xy + treatment.sum_xy,
    )  # fmt: skip
    var_x = pooled.covariance(pooled.sum_x2, pooled.sum_x, pooled.sum_x)
    if not var_x > 1e-12:
        return 0.0
    return pooled.covariance(pooled.sum_xy, pooled.sum_x, pooled.sum_y) / var_x


def compare(control: Moments, treatment: Moments, *, ratio: bool = False, cuped: bool = False) -> Comparison:
    """Treatment minus control and treatment / control - 1, raw or (cuped=True, mean metrics) CUPED-adjusted."""
    theta = cuped_theta(control, treatment) if cuped and not ratio else 0.0
    x_centre = (control.sum_x + treatment.sum_x) / max(control.n + treatment.n, 1)
    c = arm(control, ratio=ratio, theta=theta, x_centre=x_centre)
    t = arm(treatment, ratio=ratio, theta=theta, x_centre=x_centre)
    difference = t.value - c.value
    difference_se = math.sqrt(t.variance + c.variance)
    if c.value and math.isfinite(c.value):
        lift = t.value / c.value - 1
        # delta method on t / c with independent arms
        lift_se = math.sqrt(t.variance / c.value**2 + t.value**2 * c.variance / c.value**4)
    else:
        lift, lift_se = math.nan, math.nan
    reduction = 0.0
    if theta:
        raw = arm(control, ratio=ratio).variance + arm(treatment, ratio=ratio).variance
        reduction = 1 - (t.variance + c.variance) / raw if raw > 0 else 0.0
    return Comparison(c, t, difference, difference_se, lift, lift_se, theta, reduction)


@dataclass(frozen=True)
class CovariateSums:
    """A variant's sums for regression adjustment by k covariates z (CUPED is k = 1 with z the pre-period value;
    CUPAC here is k = 2, the pre-period value and the model's prediction): n, sums of y and y^2, of z (k), of z z'
    (k x k) and of z y (k)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_z: np.ndarray
    sum_zz: np.ndarray
    sum_zy: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, z: np.ndarray) -> CovariateSums:
        """The sums of per-user values y (n) and covariates z (n x k) (tests and simulations; the marts sum in SQL)."""
        y, z = np.asarray(y, dtype=float), np.asarray(z, dtype=float)
        return cls(len(y), float(y.sum()), float((y * y).sum()), z.sum(0), z.T @ z, z.T @ y)

    def __add__(self, other: CovariateSums) -> CovariateSums:
        return CovariateSums(
            self.n + other.n, self.sum_y + other.sum_y, self.sum_y2 + other.sum_y2, self.sum_z + other.sum_z,
            self.sum_zz + other.sum_zz, self.sum_zy + other.sum_zy,
        )  # fmt: skip

    def covariances(self) -> tuple[float, np.ndarray, np.ndarray]:
        """Sample Var(y), Cov(z, y) (k) and Cov(z) (k x k), n - 1 in the denominators."""
        n = self.n
        var_y = (self.sum_y2 - self.sum_y**2 / n) / (n - 1)
        cov_zy = (self.sum_zy - self.sum_z * self.sum_y / n) / (n - 1)
        cov_zz = (self.sum_zz - np.outer(self.sum_z, self.sum_z) / n) / (n - 1)
        return var_y, cov_zy, cov_zz


def regression_adjusted(control: CovariateSums, treatment: CovariateSums) -> Comparison:
    """Treatment against control adjusted by k covariates at once: theta = Cov(z)^-1 Cov(z, y) pooled over both
    arms (a pseudo-inverse, so a constant or duplicated covariate is harmless), each arm's mean of y minus
    theta'(its mean of z - the pooled mean of z), with the variance (Var y - 2 theta' Cov(z, y) + theta' Cov(z)
    theta) / n. With one covariate this is `compare(..., cuped=True)`."""
    if min(control.n, treatment.n) < 2:
        nan = Arm(math.nan, math.nan, 0)
        return Comparison(nan, nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0.0)
    pooled = control + treatment
    _, pooled_zy, pooled_zz = pooled.covariances()
    theta = np.linalg.pinv(pooled_zz, rcond=1e-10) @ pooled_zy
    centre = pooled.sum_z / pooled.n
    arms, raw_variance = [], 0.0
    for sums in (control, treatment):
        var_y, cov_zy, cov_zz = sums.covariances()
        value = sums.sum_y / sums.n - float(theta @ (sums.sum_z / sums.n - centre))
        variance = (var_y - 2 * float(theta @ cov_zy) + float(theta @ cov_zz @ theta)) / sums.n
        arms.append(Arm(value, max(variance, 0.0), sums.n))
        raw_variance += var_y / sums.n
    c, t = arms
    difference, difference_se = t.value - c.value, math.sqrt(t.variance + c.variance)
    if c.value and math.isfinite(c.value):
        lift = t.value / c.value - 1
        lift_se = math.sqrt(t.variance / c.value**2 + t.value**2 * c.variance / c.value**4)
    else:
        lift, lift_se = math.nan, math.nan
    reduction = 1 - (t.variance + c.variance) / raw_variance if raw_variance > 0 else 0.0
    theta_first = float(theta[0]) if len(theta) else 0.0
    return Comparison(c, t, difference, difference_se, lift, lift_se, theta_first, reduction)


def fixed_interval(estimate: float, se: float, alpha: float = 0.05) -> tuple[float, float]:
    """The fixed-horizon normal interval: valid when read once, at the planned sample."""
    half = stats.norm.ppf(1 - alpha / 2) * se
    return (estimate - half, estimate + half)


def two_sided_p(estimate: float, se: float) -> float:
    if not se > 0:
        return math.nan
    return float(2 * stats.norm.sf(abs(estimate) / se))


def confidence_sequence(
    estimate: float, se: float, n: int, alpha: float = 0.05, tuning_users: int = SEQUENTIAL_TUNING_USERS
) -> tuple[float, float]:
    """The asymptotic confidence sequence (Waudby-Smith et al. 2023, as in GrowthBook): with sigma the standard
    deviation of one observation (se * sqrt(n)), half-width sigma * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) *
    log(sqrt(n rho^2 + 1) / alpha)), rho tuned to be tightest at `tuning_users`. It covers the true effect at every
    n at once with probability 1 - alpha, so reading it daily does not inflate false positives."""
    if not (n > 0 and se > 0):
        return (math.nan, math.nan)
    sigma = se * math.sqrt(n)
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_users
    half = sigma * math.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))
    return (estimate - half, estimate + half)


@dataclass(frozen=True)
class Adjusted:
    """Multiple-testing corrections of a family of tests, in the order given."""

    p_values: list[float]
    rejected: list[bool]
    interval_alpha: float  # the level the adjusted intervals are computed at


def adjust(p_values: list[float], method: str = "holm", alpha: float = 0.05) -> Adjusted:
    """Holm (family-wise error) or Benjamini-Hochberg ('bh', false discovery rate) over the family's p-values (NaN
    ones, untested, stay NaN and do not count). Adjusted intervals use alpha / m for Holm (Bonferroni: valid for
    all at once) and R alpha / m for BH, R the number of discoveries (Benjamini-Yekutieli false coverage rate)."""
    values = np.asarray(p_values, dtype=float)
    tested = ~np.isnan(values)
    m = int(tested.sum())
    adjusted = np.full(len(values), np.nan)
    rejected = np.zeros(len(values), dtype=bool)
    if m and method == "holm":
        # statsmodels' Holm runs gc.collect() on every call (75 ms): the step-down by hand, checked against it
        order = np.argsort(values[tested], kind="stable")
        stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * values[tested][order]))
        corrected = np.empty(m)
        corrected[order] = stepped
        adjusted[tested], rejected[tested] = corrected, corrected <= alpha
    elif m:
        reject, corrected, _, _ = multipletests(values[tested], alpha=alpha, method={"bh": "fdr_bh"}[method])
        adjusted[tested], rejected[tested] = corrected, reject
    discoveries = int(rejected.sum())
    interval_alpha = alpha / max(m, 1) if method == "holm" or not discoveries else discoveries * alpha / m
    return Adjusted([float(p) for p in adjusted], [bool(r) for r in rejected], interval_alpha)


@dataclass(frozen=True)
class PowerPlan:
    """What the sample can detect now, and what a target effect needs."""

    mde_relative: float  # the smallest relative lift detected with `power` at the current users
    users_needed: float  # users in all (both arms, current split) to detect `target_relative`
    users_now: int
    days_left: float  # at the current daily exposures; 0 when enough, inf with no traffic


def power_plan(
    control: Moments, treatment: Moments, *, target_relative: float, days_running: float, alpha: float = 0.05,
    power: float = 0.8, ratio: bool = False, variance_reduction: float = 0.0,
) -> PowerPlan:  # fmt: skip
    """Two-sample z power (statsmodels NormalIndPower) on the observed variances and split: the minimum detectable
    relative effect at the current users, and users needed (and days left at the current rate) for
    `target_relative`. A CUPED estimate's `variance_reduction` shrinks the variances it plans with."""
    c, t = arm(control, ratio=ratio), arm(treatment, ratio=ratio)
    users_now = control.n + treatment.n
    if not (c.n >= 2 and t.n >= 2 and c.value and c.variance > 0 and t.variance > 0):
        return PowerPlan(math.nan, math.nan, users_now, math.nan)
    # one observation's standard deviation per arm, pooled: effect sizes are in its units
    sd = math.sqrt((c.variance * c.n + t.variance * t.n) / 2 * (1 - min(max(variance_reduction, 0.0), 0.99)))
    split = c.n / t.n
    analysis = NormalIndPower()
    effect = analysis.solve_power(effect_size=None, nobs1=t.n, alpha=alpha, power=power, ratio=split)
    mde_relative = effect * sd / abs(c.value)
    treatment_needed = analysis.solve_power(
        effect_size=target_relative * abs(c.value) / sd, nobs1=None, alpha=alpha, power=power, ratio=split
    )
    users_needed = float(treatment_needed * (1 + split))
    rate = users_now / days_running if days_running > 0 else 0.0
    days_left = 0.0 if users_needed <= users_now else (users_needed - users_now) / rate if rate > 0 else math.inf
    return PowerPlan(float(mde_relative), users_needed, users_now, days_left)
