"""marts.experiment_results: per experiment and variant, conversion with Wilson intervals, relative lift against
control with a delta-method interval, the two-proportion test, the sample-ratio-mismatch test and revenue per
user with Student/Welch intervals.

A Python model because the p-values need the normal, chi-square and t distributions, which SQL engines do not
share; the counts it reads are SQL (intermediate.int_experiment_variants), so only a few rows per experiment
cross into Python. scipy gives exact distribution functions, the same ones the tests compare against.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

Z95 = stats.norm.ppf(0.975)
COLUMNS = [
    "experiment_id", "variant", "is_control", "users", "conversions", "conversion_rate", "ci_low", "ci_high",
    "lift_vs_control", "lift_ci_low", "lift_ci_high", "p_value", "srm_p_value", "has_sample_ratio_mismatch",
    "is_underpowered",
    "revenue_per_user", "revenue_per_user_ci_low", "revenue_per_user_ci_high", "revenue_diff_vs_control",
    "revenue_diff_ci_low", "revenue_diff_ci_high", "revenue_p_value", "goal_event", "window_days",
    "planned_share", "users_window_complete",
]  # fmt: skip


def wilson(conversions: int, users: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if users == 0:
        return (math.nan, math.nan)
    p = conversions / users
    denominator = 1 + Z95**2 / users
    centre = (p + Z95**2 / (2 * users)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / users + Z95**2 / (4 * users**2)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def lift_interval(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """95% interval of p1 / p0 - 1: delta method on log(p1 / p0) (Katz), undefined when a side has no conversion."""
    if min(x1, x0) == 0:
        return (math.nan, math.nan)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    log_ratio = math.log((x1 / n1) / (x0 / n0))
    return (math.exp(log_ratio - Z95 * se) - 1, math.exp(log_ratio + Z95 * se) - 1)


def two_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return math.nan
    z = (x1 / n1 - x0 / n0) / se
    return float(2 * stats.norm.sf(abs(z)))


def planned_shares(experiment_id: str, split: object, variants: list[str]) -> dict[str, float]:
    """Planned share per variant from seed text `a=0.5;b=0.5` (empty: equal shares)."""
    if split is None or (isinstance(split, float) and math.isnan(split)) or not str(split).strip():
        return {variant: 1 / len(variants) for variant in variants}
    weights: dict[str, float] = {}
    for part in str(split).split(";"):
        name, sep, weight = part.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or weights.get(name.strip(), -1) <= 0:
            raise ValueError(
                f"seed experiments: planned_split of {experiment_id!r} must be variant=weight pairs joined by ';' "
                f"with positive weights, got {split!r}"
            )
    missing = sorted(set(variants) - set(weights))
    if missing:
        raise ValueError(
            f"seed experiments: planned_split of {experiment_id!r} lacks observed variant(s) {missing}; "
            f"it names {sorted(weights)}"
        )
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def srm_p_value(users: dict[str, int], shares: dict[str, float]) -> float:
    """Chi-square goodness of fit of observed exposures against the planned split (k - 1 degrees of freedom;
    planned variants never seen count as 0 observed)."""
    names = sorted(shares)
    observed = np.array([users.get(name, 0) for name in names], dtype=float)
    expected = np.array([shares[name] for name in names]) * observed.sum()
    if len(names) < 2:
        return math.nan
    return float(stats.chisquare(observed, expected).pvalue)


def mean_interval(mean: float, sd: float, n: int) -> tuple[float, float]:
    """Student t 95% interval of a mean (n - 1 degrees of freedom)."""
    if n < 2 or math.isnan(sd):
        return (math.nan, math.nan)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def welch(mean1: float, sd1: float, n1: int, mean0: float, sd0: float, n0: int) -> tuple[float, float, float]:
    """Welch 95% interval of mean1 - mean0 and its two-sided p-value."""
    if min(n1, n0) < 2:
        return (math.nan, math.nan, math.nan)
    v1, v0 = sd1**2 / n1, sd0**2 / n0
    se = math.sqrt(v1 + v0)
    diff = mean1 - mean0
    if se == 0:
        return (diff, diff, math.nan)
    df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1))
    half = stats.t.ppf(0.975, df) * se
    return (diff - half, diff + half, float(2 * stats.t.sf(abs(diff) / se, df)))


def experiment_rows(experiment: pd.DataFrame, min_users: int, srm_alpha: float) -> list[dict]:
    """The result rows of one experiment's variants."""
    experiment_id = experiment["experiment_id"].iloc[0]
    control_name = experiment["control_variant"].iloc[0]
    rows = {row.variant: row for row in experiment.itertuples(index=False)}
    shares = planned_shares(experiment_id, experiment["planned_split"].iloc[0], sorted(rows))
    srm = srm_p_value({name: int(row.users) for name, row in rows.items()}, shares)
    underpowered = any(int(row.users) < min_users for row in rows.values()) or len(rows) < len(shares)
    control = rows.get(control_name)
    out = []
    for name in sorted(rows, key=lambda v: (v != control_name, v)):
        row = rows[name]
        n, x = int(row.users), int(row.conversions)
        sd = float(row.revenue_sd) if pd.notna(row.revenue_sd) else math.nan
        rate_low, rate_high = wilson(x, n)
        revenue_low, revenue_high = mean_interval(float(row.revenue_per_user), sd, n)
        result = {
            "experiment_id": experiment_id, "variant": name, "is_control": name == control_name, "users": n,
            "conversions": x, "conversion_rate": x / n, "ci_low": rate_low, "ci_high": rate_high,
            "lift_vs_control": math.nan, "lift_ci_low": math.nan, "lift_ci_high": math.nan, "p_value": math.nan,
            "srm_p_value": srm, "has_sample_ratio_mismatch": bool(srm < srm_alpha), "is_underpowered": underpowered,
            "revenue_per_user": float(row.revenue_per_user),
            "revenue_per_user_ci_low": revenue_low, "revenue_per_user_ci_high": revenue_high,
            "revenue_diff_vs_control": math.nan, "revenue_diff_ci_low": math.nan, "revenue_diff_ci_high": math.nan,
            "revenue_p_value": math.nan, "goal_event": row.goal_event, "window_days": int(row.window_days),
            "planned_share": shares.get(name, math.nan), "users_window_complete": int(row.users_window_complete),
        }  # fmt: skip
        if control is not None and name != control_name:
            n0, x0 = int(control.users), int(control.conversions)
            if x0 > 0:
                result["lift_vs_control"] = (x / n) / (x0 / n0) - 1
            result["lift_ci_low"], result["lift_ci_high"] = lift_interval(x, n, x0, n0)
            result["p_value"] = two_proportion_p(x, n, x0, n0)
            sd0 = float(control.revenue_sd) if pd.notna(control.revenue_sd) else math.nan
            low, high, p = welch(float(row.revenue_per_user), sd, n, float(control.revenue_per_user), sd0, n0)
            result["revenue_diff_vs_control"] = float(row.revenue_per_user) - float(control.revenue_per_user)
            result["revenue_diff_ci_low"], result["revenue_diff_ci_high"], result["revenue_p_value"] = low, high, p
        out.append(result)
    return out


def to_pandas(relation: object) -> pd.DataFrame:
    """A dbt.ref() result as pandas: DuckDB relations have .df(), Spark DataFrames .toPandas()."""
    return relation.df() if hasattr(relation, "df") else relation.toPandas()


def model(dbt, session):
    dbt.config(materialized="table")
    min_users = int(dbt.config.get("experiment_min_users"))
    srm_alpha = float(dbt.config.get("experiment_srm_alpha"))
    variants = to_pandas(dbt.ref("int_experiment_variants"))
    rows: list[dict] = []
    for _, experiment in variants.groupby("experiment_id", sort=True):
        rows.extend(experiment_rows(experiment, min_users, srm_alpha))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # nullable dtypes, so that "not defined" (the control's lift, an empty side) lands as NULL, not NaN
    not_floats = {
        "experiment_id", "variant", "goal_event", "is_control", "is_underpowered", "has_sample_ratio_mismatch",
        "users", "conversions", "window_days", "users_window_complete",
    }  # fmt: skip
    floats = [c for c in COLUMNS if c not in not_floats]
    frame[floats] = frame[floats].astype("Float64")
    for column in ("users", "conversions", "window_days", "users_window_complete"):
        frame[column] = frame[column].astype("Int64")
    for column in ("is_control", "is_underpowered", "has_sample_ratio_mismatch"):
        frame[column] = frame[column].astype("boolean")
    for column in ("experiment_id", "variant", "goal_event"):
        frame[column] = frame[column].astype("string")
    return frame
