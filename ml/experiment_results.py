"""marts.experiment_results: per experiment and variant, conversion with Wilson intervals, relative lift against
control with a delta-method interval, the two-proportion test, the sample-ratio-mismatch test and revenue per
user with Student/Welch intervals.

The statistics of the dbt model of the same name, kept here so that both engines compute them with the same code:
on DuckDB the dbt Python model calls `results_frame`; on Spark (whose dbt adapter runs Python models only on
Databricks) a SQL model streams the variant rows through `python -m ml.experiment_results` (Spark's script
transform). The p-values need the normal, chi-square and t distributions, which SQL engines do not share; the counts
come from SQL (intermediate.int_experiment_variants), so only a few rows per experiment cross into Python. scipy gives
exact distribution functions, the same ones the tests compare against.

Variant names and experiment ids are client values: one that the seed does not plan is reported
(is_planned_variant / is_planned_experiment false, counted in unplanned_users and marts.data_health_flags) and
never raises; a malformed seed row is reported in config_error on its own experiment's rows. See experiment_rows.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

from ml.script_transform import json_lines_in, json_lines_out

Z95 = stats.norm.ppf(0.975)
COLUMNS = [
    "experiment_id", "variant", "is_control", "users", "conversions", "conversion_rate", "ci_low", "ci_high",
    "lift_vs_control", "lift_ci_low", "lift_ci_high", "p_value", "srm_p_value", "has_sample_ratio_mismatch",
    "is_underpowered",
    "revenue_per_user", "revenue_per_user_ci_low", "revenue_per_user_ci_high", "revenue_diff_vs_control",
    "revenue_diff_ci_low", "revenue_diff_ci_high", "revenue_p_value", "goal_event", "window_days",
    "planned_share", "users_window_complete",
    "is_planned_experiment", "is_planned_variant", "unplanned_users", "variant_names", "config_error",
]  # fmt: skip
# the row int_experiment_variants folds unplanned variants (and experiments) beyond its bounds into
FOLDED = "(other unplanned)"
LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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


def parse_split(split: object) -> tuple[dict[str, float] | None, str | None]:
    """(planned share per variant, None) from seed text `a=0.5;b=0.5`; (None, None) when empty; (None, error) when
    malformed. The seed is configuration, not client data, but a bad row must only mark its own experiment."""
    if split is None or (isinstance(split, float) and math.isnan(split)) or not str(split).strip():
        return None, None
    weights: dict[str, float] = {}
    for part in str(split).split(";"):
        if not part.strip():
            continue  # a trailing ';'
        name, sep, text = part.partition("=")
        name = name.strip()
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not sep or not name or name in weights or not (math.isfinite(weight) and weight > 0):
            return None, (
                f"planned_split must be variant=weight pairs joined by ';' with distinct names and positive "
                f"weights, got {str(split)[:200]!r}; the traffic split is not checked"
            )
        weights[name] = weight
    if not weights:
        return None, f"planned_split names no variant, got {str(split)[:200]!r}; the traffic split is not checked"
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}, None


def parse_factors(factors: object) -> tuple[tuple[str, ...] | None, str | None]:
    """(factor names, None) from seed text `a;b`; (None, None) when empty; (None, error) when malformed.
    The same rule as ml/experiments.py (the factorial asset)."""
    if factors is None or (isinstance(factors, float) and math.isnan(factors)) or not str(factors).strip():
        return None, None
    names = tuple(f.strip() for f in str(factors).split(";") if f.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        return None, f"factors must be 2+ distinct names joined by ';', got {str(factors)[:200]!r}"
    return names, None


def fits_design(variant: str, factors: tuple[str, ...]) -> bool:
    """A factorial variant names one level per factor joined by '+', each 1-64 letters, digits, '_', '-' or '.'
    (ml/experiments.py's rule)."""
    parts = variant.split("+")
    return len(parts) == len(factors) and all(LEVEL.fullmatch(part) for part in parts)


def planned_rule(
    control_name: str, shares: dict[str, float] | None, factors: tuple[str, ...] | None
) -> Callable[[str], bool]:
    """Whether a variant is planned: the control always; else one named in planned_split, or with no planned_split
    one that fits a factorial experiment's factors, or any observed variant of an experiment with neither; never the
    '(other unplanned)' fold. Both experiment marts use this one rule."""

    def is_planned(name: str) -> bool:
        if name == FOLDED:
            return False
        if name == control_name:
            return True
        if shares is not None:
            return name in shares
        if factors is not None:
            return fits_design(name, factors)
        return True

    return is_planned


def planned_shares(
    shares: dict[str, float] | None, split_error: str | None, planned: Iterable[str]
) -> dict[str, float] | None:
    """The split the sample-ratio test checks: the seed's planned_split, equal shares over the planned variants
    when it has none, None when it is malformed."""
    if shares is None and split_error is None:
        planned = list(planned)
        return {name: 1 / len(planned) for name in planned}
    return shares


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
    """The result rows of one experiment's variants.

    A variant is planned when the seed names it (control_variant or planned_split) or, with no planned_split,
    when it fits the experiment's factors (factorial experiments) or the experiment has none (every observed
    variant then counts as planned, with equal planned shares). The sample-ratio test, planned_share and
    is_underpowered use the planned variants only; an unplanned variant (and the '(other unplanned)' fold row)
    keeps its own counts, rate and revenue but is not compared with control, and its exposures are counted on
    every row of the experiment in unplanned_users."""
    first = experiment.iloc[0]
    experiment_id, control_name = first["experiment_id"], first["control_variant"]
    rows = {row.variant: row for row in experiment.itertuples(index=False)}
    errors = []
    shares, split_error = parse_split(first["planned_split"])
    factors, factors_error = parse_factors(first["factors"])
    errors += [e for e in (split_error, factors_error) if e]
    if shares is not None and control_name not in shares:
        errors.append(f"control_variant {control_name!r} is not in planned_split")

    is_planned = planned_rule(control_name, shares, factors)
    planned = sorted(name for name in rows if is_planned(name))
    shares = planned_shares(shares, split_error, planned)
    users = {name: int(row.users) for name, row in rows.items()}
    srm = math.nan if shares is None else srm_p_value({name: users[name] for name in planned}, shares)
    underpowered = any(users[name] < min_users for name in planned) or (
        shares is not None and len(set(planned) & set(shares)) < len(shares)
    )
    unplanned_users = sum(n for name, n in users.items() if not is_planned(name))
    control = rows.get(control_name)
    out = []
    for name in sorted(rows, key=lambda v: (v != control_name, not is_planned(v), v)):
        row = rows[name]
        n, x = int(row.users), int(row.conversions)
        sd = float(row.revenue_sd) if pd.notna(row.revenue_sd) else math.nan
        rate_low, rate_high = wilson(x, n)
        revenue_low, revenue_high = mean_interval(float(row.revenue_per_user), sd, n)
        planned_variant = is_planned(name)
        result = {
            "experiment_id": experiment_id, "variant": name, "is_control": name == control_name, "users": n,
            "conversions": x, "conversion_rate": x / n, "ci_low": rate_low, "ci_high": rate_high,
            "lift_vs_control": math.nan, "lift_ci_low": math.nan, "lift_ci_high": math.nan, "p_value": math.nan,
            "srm_p_value": srm, "has_sample_ratio_mismatch": bool(srm < srm_alpha), "is_underpowered": underpowered,
            "revenue_per_user": float(row.revenue_per_user),
            "revenue_per_user_ci_low": revenue_low, "revenue_per_user_ci_high": revenue_high,
            "revenue_diff_vs_control": math.nan, "revenue_diff_ci_low": math.nan, "revenue_diff_ci_high": math.nan,
            "revenue_p_value": math.nan, "goal_event": row.goal_event, "window_days": int(row.window_days),
            "planned_share": (shares or {}).get(name, math.nan) if planned_variant else math.nan,
            "users_window_complete": int(row.users_window_complete),
            "is_planned_experiment": bool(row.is_planned_experiment), "is_planned_variant": planned_variant,
            "unplanned_users": unplanned_users, "variant_names": int(row.variant_names),
            "config_error": "; ".join(errors) or None,
        }  # fmt: skip
        if control is not None and name != control_name and planned_variant:
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


def count_rows(experiment: pd.DataFrame, error: str) -> list[dict]:
    """Counts only, when an experiment's statistics could not be computed: the other experiments still are."""
    out = []
    for row in experiment.itertuples(index=False):
        n, x = int(row.users), int(row.conversions)
        result = dict.fromkeys(COLUMNS, math.nan)
        low, high = wilson(x, n)
        result.update(
            experiment_id=row.experiment_id, variant=row.variant, is_control=row.variant == row.control_variant,
            users=n, conversions=x, conversion_rate=x / n, ci_low=low, ci_high=high,
            has_sample_ratio_mismatch=False, is_underpowered=True, revenue_per_user=float(row.revenue_per_user),
            goal_event=row.goal_event, window_days=int(row.window_days),
            users_window_complete=int(row.users_window_complete),
            is_planned_experiment=bool(row.is_planned_experiment), is_planned_variant=False, unplanned_users=0,
            variant_names=int(row.variant_names), config_error=error[:500],
        )  # fmt: skip
        out.append(result)
    return out


# Columns of intermediate.int_experiment_variants that results_frame reads.
VARIANT_COLUMNS = [
    "experiment_id", "variant", "users", "conversions", "revenue", "revenue_per_user", "revenue_sd",
    "users_window_complete", "goal_event", "window_days", "control_variant", "planned_split", "factors",
    "is_planned_experiment", "variant_names",
]  # fmt: skip


def results_frame(variants: pd.DataFrame, min_users: int, srm_alpha: float) -> pd.DataFrame:
    """marts.experiment_results from the rows of intermediate.int_experiment_variants."""
    rows: list[dict] = []
    for _, experiment in variants.groupby("experiment_id", sort=True):
        try:
            rows.extend(experiment_rows(experiment, min_users, srm_alpha))
        except Exception as error:  # one experiment's surprise must not fail the others (or the run)
            rows.extend(count_rows(experiment, f"statistics not computed: {type(error).__name__}: {error}"))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # nullable dtypes, so that "not defined" (the control's lift, an empty side) lands as NULL, not NaN
    not_floats = {
        "experiment_id", "variant", "goal_event", "is_control", "is_underpowered", "has_sample_ratio_mismatch",
        "users", "conversions", "window_days", "users_window_complete",
        "is_planned_experiment", "is_planned_variant", "unplanned_users", "variant_names", "config_error",
    }  # fmt: skip
    floats = [c for c in COLUMNS if c not in not_floats]
    frame[floats] = frame[floats].astype("Float64")
    for column in ("users", "conversions", "window_days", "users_window_complete", "unplanned_users", "variant_names"):
        frame[column] = frame[column].astype("Int64")
    for column in ("is_control", "is_underpowered", "has_sample_ratio_mismatch", "is_planned_experiment",
                   "is_planned_variant"):  # fmt: skip
        frame[column] = frame[column].astype("boolean")
    for column in ("experiment_id", "variant", "goal_event", "config_error"):
        frame[column] = frame[column].astype("string")
    return frame


def transform(lines: Iterable[str], min_users: int, srm_alpha: float) -> Iterator[str]:
    """Spark's script transform: variant rows as JSON lines in, result rows as JSON lines out."""
    variants = json_lines_in(lines, VARIANT_COLUMNS)
    if variants is not None:
        yield from json_lines_out(results_frame(variants, min_users, srm_alpha))


def main(argv: list[str] | None = None) -> None:
    """`python -m ml.experiment_results MIN_USERS SRM_ALPHA`: the transform over standard input and output."""
    args = sys.argv[1:] if argv is None else argv
    for line in transform(sys.stdin, int(args[0]), float(args[1])):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
