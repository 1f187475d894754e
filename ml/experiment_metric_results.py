"""marts.experiment_metric_results: per experiment, metric and variant, the treatment-against-control estimates of
ml/experiment_stats.py from the sums of intermediate.int_experiment_metric_moments, and per experiment the decision
those estimates support.

Per planned treatment variant and metric:
- the raw lift (delta method) with its fixed-horizon interval and p-value;
- for a mean metric with a pre-period, CUPED: the lift adjusted by the same metric before the exposure, its
  interval, theta and the variance reduction;
- for a mean metric whose every user has a CUPAC prediction (intermediate.int_experiment_cupac), the lift adjusted
  by the pre-period value and the prediction together, its interval and variance reduction;
- the metric's estimate (`estimate`): CUPAC's where it applies, else CUPED's, else the raw one;
- the always-valid confidence sequence of that estimate (valid however often the page is read);
- the experiment's multiple-testing correction (seed experiments.correction: holm or bh) over its primary and
  secondary metrics x planned treatment variants: adjusted p-value, and the fixed and sequential intervals at the
  corrected level;
- power: the minimum detectable relative lift at the current users, the users needed for the experiment's
  target_lift, and the days that takes at its traffic so far (users per day with exposures);
- for guardrails, a status: breached (the always-valid interval lies wholly beyond the tolerance on the bad side),
  within tolerance (wholly inside it) or not yet known.

The decision rules, in order (DECISION_RULES, also written on every row):
1. stop: sample ratio mismatch - the exposures do not fit the planned split (p below var experiment_srm_alpha);
2. stop: guardrail breached - any guardrail breached for any planned treatment variant;
3. ship <variant> - every primary metric's corrected always-valid interval lies wholly on its good side (the
   variant with the largest primary lift when several do);
4. stop: no effect of target size - for every planned treatment variant, a primary metric's corrected always-valid
   interval rules out target_lift on the good side;
5. keep running - otherwise, with the users still needed ("not enough users yet") or what is left to learn.

The same code runs on both engines: a dbt Python model on DuckDB, Spark's script transform
(`python -m ml.experiment_metric_results`) on Spark. Client values (variant names) never raise here: an unplanned
variant keeps its own value but is not compared with control; one experiment's surprise leaves the others' rows
intact (its rows carry config_error).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.experiment_results import parse_factors, parse_split, planned_rule, planned_shares, srm_p_value
from ml.experiment_stats import (
    CovariateSums,
    Moments,
    adjust,
    compare,
    confidence_sequence,
    fixed_interval,
    power_plan,
    regression_adjusted,
    two_sided_p,
)
from ml.script_transform import json_lines_in, json_lines_out

DECISION_RULES = (
    "1. stop: sample ratio mismatch when the exposures do not fit the planned split (SRM p < {srm_alpha}); "
    "2. stop: guardrail breached when a guardrail's always-valid interval lies wholly beyond its tolerance on the "
    "bad side; 3. ship when every primary metric's corrected always-valid interval lies wholly on its good side; "
    "4. stop: no effect of target size when those intervals rule out the target lift for every variant; "
    "5. keep running otherwise."
)
CORRECTIONS = ("holm", "bh")
KINDS_WITH_CUPED = ("conversion", "count", "sum", "retention")

COLUMNS = [
    "experiment_id", "metric", "kind", "role", "direction", "tolerance", "variant", "is_control",
    "is_planned_variant", "users", "users_window_complete", "cap_value", "value", "control_value", "difference",
    "lift", "lift_ci_low", "lift_ci_high", "p_value", "cuped_lift", "cuped_ci_low", "cuped_ci_high", "cuped_theta",
    "variance_reduction", "cupac_lift", "cupac_ci_low", "cupac_ci_high", "cupac_variance_reduction", "estimate",
    "estimate_lift", "sequential_ci_low", "sequential_ci_high", "correction",
    "adjusted_p_value", "adjusted_ci_low", "adjusted_ci_high", "adjusted_sequential_ci_low",
    "adjusted_sequential_ci_high", "is_significant", "mde", "target_lift", "users_needed", "exposure_days",
    "days_left", "guardrail_status", "decision", "decision_variant", "decision_reason", "decision_rules",
    "config_error",
]  # fmt: skip
STRINGS = {
    "experiment_id", "metric", "kind", "role", "direction", "variant", "estimate", "correction", "guardrail_status",
    "decision", "decision_variant", "decision_reason", "decision_rules", "config_error",
}  # fmt: skip
BOOLEANS = {"is_control", "is_planned_variant", "is_significant"}
INTEGERS = {"users", "users_window_complete", "exposure_days"}

# Columns of intermediate.int_experiment_metric_moments that results_frame reads.
MOMENT_COLUMNS = [
    "experiment_id", "metric", "kind", "variant", "role", "direction", "tolerance", "pre_period_days", "cap_value",
    "control_variant", "planned_split", "factors", "correction", "target_lift", "exposure_days", "users",
    "users_window_complete", "users_cupac", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2",
    "sum_yd", "sum_c", "sum_c2", "sum_cy", "sum_xc",
]  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The dbt vars the statistics read."""

    alpha: float = 0.05
    power: float = 0.8
    srm_alpha: float = 0.001
    tuning_users: int = 5000


def number_of(row: object, name: str) -> float:
    """A sum of a moments row (missing is 0: no user had a value)."""
    return number_or(getattr(row, name, None), 0.0)


def moments_of(row: object) -> Moments:
    """A moments row's sums of y, the pre-period value x and the denominator d."""
    names = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")
    return Moments(int(row.users), *(number_of(row, name) for name in names))


def cupac_sums(row: object) -> CovariateSums:
    """A moments row's sums for the adjustment by the pre-period value x and CUPAC's prediction c together."""
    sum_x, sum_c = number_of(row, "sum_x"), number_of(row, "sum_c")
    sum_xc = number_of(row, "sum_xc")
    return CovariateSums(
        n=int(row.users), sum_y=number_of(row, "sum_y"), sum_y2=number_of(row, "sum_y2"),
        sum_z=np.array([sum_x, sum_c]),
        sum_zz=np.array([[number_of(row, "sum_x2"), sum_xc], [sum_xc, number_of(row, "sum_c2")]]),
        sum_zy=np.array([number_of(row, "sum_xy"), number_of(row, "sum_cy")]),
    )  # fmt: skip


def has_cupac(row: object) -> bool:
    """Every user of the row has a CUPAC prediction."""
    users, predicted = getattr(row, "users", None), getattr(row, "users_cupac", None)
    return predicted is not None and not pd.isna(predicted) and int(predicted) == int(users) > 0


def good_sign(direction: object) -> int:
    """+1 when higher is better (direction increase, the default), -1 when lower is."""
    return -1 if str(direction).strip().lower() == "decrease" else 1


def number_or(value: object, default: float) -> float:
    return default if value is None or pd.isna(value) else float(value)


def guardrail_status(low: float, high: float, sign: int, tolerance: float) -> str | None:
    """breached / within tolerance / not yet known, from the always-valid interval of the relative lift."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not yet known"
    good_low, good_high = sorted((sign * low, sign * high))
    if good_high < -tolerance:
        return "breached"
    if good_low > -tolerance:
        return "within tolerance"
    return "not yet known"


def metric_rows(experiment: pd.DataFrame, settings: Settings) -> tuple[list[dict], str | None]:
    """The rows of one experiment (every metric and variant) before the correction and the decision, and the
    experiment's configuration error if any."""
    first = experiment.iloc[0]
    control_name = first["control_variant"]
    shares, split_error = parse_split(first["planned_split"])
    factors, factors_error = parse_factors(first["factors"])
    errors = [e for e in (split_error, factors_error) if e]
    correction = str(first["correction"]).strip().lower() if pd.notna(first["correction"]) else "holm"
    if correction not in CORRECTIONS:
        errors.append(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction[:50]!r}; holm used")
        correction = "holm"
    target_lift = number_or(first["target_lift"], math.nan)
    is_planned = planned_rule(control_name, shares, factors)

    out = []
    for (metric, kind), rows in experiment.groupby(["metric", "kind"], sort=True):
        by_variant = {row.variant: row for row in rows.itertuples(index=False)}
        control = by_variant.get(control_name)
        control_moments = moments_of(control) if control is not None else None
        ratio = kind == "ratio"
        for name in sorted(by_variant, key=lambda v: (v != control_name, not is_planned(v), v)):
            row = by_variant[name]
            moments = moments_of(row)
            result = dict.fromkeys(COLUMNS, math.nan)
            result.update(
                experiment_id=row.experiment_id, metric=metric, kind=kind, role=row.role, direction=row.direction,
                tolerance=row.tolerance, variant=name, is_control=name == control_name,
                is_planned_variant=is_planned(name), users=moments.n,
                users_window_complete=int(row.users_window_complete), cap_value=row.cap_value,
                value=variant_value(moments, ratio),
                correction=correction, target_lift=target_lift, exposure_days=int(row.exposure_days),
                guardrail_status=None, is_significant=None, estimate=None, decision=None, decision_variant=None,
                decision_reason=None, decision_rules=None, config_error=None,
            )  # fmt: skip
            if control_moments is not None:
                result["control_value"] = variant_value(control_moments, ratio)
            if control_moments is not None and name != control_name and is_planned(name):
                cupac = (cupac_sums(control), cupac_sums(row)) if has_cupac(row) and has_cupac(control) else None
                result.update(compare_to_control(control_moments, moments, row, kind, settings, cupac))
            out.append(result)
    return out, "; ".join(errors) or None


def variant_value(moments: Moments, ratio: bool) -> float:
    """The variant's mean of the metric, or for a ratio metric its sum over the sum of the denominator."""
    denominator = moments.sum_d if ratio else moments.n
    return moments.sum_y / denominator if denominator else math.nan


def compare_to_control(
    control: Moments, treatment: Moments, row: object, kind: str, settings: Settings,
    cupac: tuple[CovariateSums, CovariateSums] | None = None,
) -> dict:  # fmt: skip
    """One planned treatment variant against control on one metric: raw, CUPED (a mean metric with a pre-period)
    and CUPAC (`cupac`: both arms' sums for the adjustment by the pre-period value and the prediction together)
    estimates; the last of them that applies is the metric's estimate (CUPAC adjusts by CUPED's covariate too, so
    it removes at least as much variance in the sample), read with its always-valid interval and power."""
    ratio = kind == "ratio"
    chosen = raw = compare(control, treatment, ratio=ratio)
    low, high = fixed_interval(raw.lift, raw.lift_se, settings.alpha)
    out = {"difference": raw.difference, "lift": raw.lift, "lift_ci_low": low, "lift_ci_high": high, "estimate": "raw"}
    if kind in KINDS_WITH_CUPED and number_or(row.pre_period_days, 0) > 0:
        chosen = compare(control, treatment, cuped=True)
        low, high = fixed_interval(chosen.lift, chosen.lift_se, settings.alpha)
        out.update(
            cuped_lift=chosen.lift, cuped_ci_low=low, cuped_ci_high=high, cuped_theta=chosen.theta,
            variance_reduction=chosen.variance_reduction, estimate="cuped",
        )  # fmt: skip
    if kind in KINDS_WITH_CUPED and cupac is not None:
        chosen = regression_adjusted(*cupac)
        low, high = fixed_interval(chosen.lift, chosen.lift_se, settings.alpha)
        out.update(
            cupac_lift=chosen.lift, cupac_ci_low=low, cupac_ci_high=high,
            cupac_variance_reduction=chosen.variance_reduction, estimate="cupac",
        )  # fmt: skip
    out.update(
        estimate_lift=chosen.lift, lift_se=chosen.lift_se, estimate_users=chosen.n,
        p_value=two_sided_p(chosen.lift, chosen.lift_se),
    )  # fmt: skip
    out["sequential_ci_low"], out["sequential_ci_high"] = confidence_sequence(
        chosen.lift, chosen.lift_se, chosen.n, settings.alpha, settings.tuning_users
    )
    target = number_or(row.target_lift, math.nan)
    if math.isfinite(target) and target > 0:
        plan = power_plan(
            control, treatment, target_relative=target, days_running=float(row.exposure_days), alpha=settings.alpha,
            power=settings.power, ratio=ratio, variance_reduction=max(chosen.variance_reduction, 0),
        )  # fmt: skip
        out.update(mde=plan.mde_relative, users_needed=plan.users_needed, days_left=plan.days_left)
    return out


def correct(rows: list[dict], settings: Settings) -> None:
    """The experiment's multiple-testing correction over its primary and secondary comparisons, in place."""
    family = [r for r in rows if r["role"] in ("primary", "secondary") and r.get("lift_se") is not None
              and not math.isnan(r.get("p_value", math.nan))]  # fmt: skip
    if not family:
        return
    adjusted = adjust([r["p_value"] for r in family], family[0]["correction"], settings.alpha)
    for row, p_value, rejected in zip(family, adjusted.p_values, adjusted.rejected, strict=True):
        row["adjusted_p_value"], row["is_significant"] = p_value, rejected
        row["adjusted_ci_low"], row["adjusted_ci_high"] = fixed_interval(
            row["estimate_lift"], row["lift_se"], adjusted.interval_alpha
        )
        row["adjusted_sequential_ci_low"], row["adjusted_sequential_ci_high"] = confidence_sequence(
            row["estimate_lift"], row["lift_se"], row["estimate_users"], adjusted.interval_alpha, settings.tuning_users
        )


def decide(rows: list[dict], srm: float, settings: Settings) -> tuple[str, str | None, str]:
    """(decision, shipped variant, reason in words) for one experiment, by DECISION_RULES."""
    compared = [r for r in rows if not r["is_control"] and r["is_planned_variant"] and r.get("lift_se") is not None]
    for r in compared:
        if r["role"] == "guardrail":
            tolerance = number_or(r["tolerance"], 0.0)
            r["guardrail_status"] = guardrail_status(
                r["sequential_ci_low"], r["sequential_ci_high"], good_sign(r["direction"]), tolerance
            )
    if math.isfinite(srm) and srm < settings.srm_alpha:
        reason = (
            f"the exposures do not fit the planned split (p = {srm:.2g}): the assignment is broken, so no metric "
            "can be trusted; fix it and restart"
        )
        return "stop: sample ratio mismatch", None, reason
    breached = [r for r in compared if r["guardrail_status"] == "breached"]
    if breached:
        names = ", ".join(sorted({f"{r['metric']} ({r['variant']})" for r in breached}))
        return "stop: guardrail breached", None, f"breached beyond its tolerance: {names}"
    primary = [r for r in compared if r["role"] == "primary"]
    if not primary:
        return "keep running", None, "no primary metric is defined in seed experiment_metrics, so none can be read"
    by_variant: dict[str, list[dict]] = {}
    for r in primary:
        by_variant.setdefault(r["variant"], []).append(r)
    winners = [v for v, metrics in by_variant.items() if all(good_bounds(r)[0] > 0 for r in metrics)]
    if winners:
        best = max(winners, key=lambda v: min(good_sign(r["direction"]) * r["estimate_lift"] for r in by_variant[v]))
        lifts = "; ".join(
            f"{r['metric']} {r['estimate_lift']:+.1%} [{r['adjusted_sequential_ci_low']:+.1%}, "
            f"{r['adjusted_sequential_ci_high']:+.1%}]"
            for r in by_variant[best]
        )
        return "ship", best, f"{best} wins on every primary metric (always-valid, corrected): {lifts}"
    if all(any(good_bounds(r)[1] < r["target_lift"] for r in metrics) for metrics in by_variant.values()):
        reason = (
            f"the always-valid intervals rule out a lift of {primary[0]['target_lift']:.0%} on the primary metric "
            "for every variant"
        )
        return "stop: no effect of target size", None, reason
    return "keep running", None, keep_running_reason(primary)


def good_bounds(row: dict) -> tuple[float, float]:
    """The corrected always-valid interval of a lift, signed so that higher is better ((nan, nan) when unknown:
    every comparison with it is then false)."""
    sign = good_sign(row["direction"])
    low, high = sorted((sign * row["adjusted_sequential_ci_low"], sign * row["adjusted_sequential_ci_high"]))
    return (low, high) if math.isfinite(low) and math.isfinite(high) else (math.nan, math.nan)


def keep_running_reason(primary: list[dict]) -> str:
    """What the experiment still needs, in words."""
    needed = [r for r in primary if math.isfinite(r["users_needed"])]
    if not needed:
        return "not enough users yet to estimate the power: every variant needs users with and without the metric"
    worst = max(needed, key=lambda r: r["users_needed"])
    if worst["days_left"] > 0:
        days = "more than 10 years" if worst["days_left"] > 3650 else f"about {math.ceil(worst['days_left']):,} days"
        return (
            f"not enough users yet: detecting a {worst['target_lift']:.0%} lift on {worst['metric']} needs "
            f"{math.ceil(worst['users_needed']):,} users in {worst['variant']} and control, {days} at the traffic so "
            f"far; today it can detect {worst['mde']:.0%}"
        )
    return (
        f"enough users for a {worst['target_lift']:.0%} lift, but no primary metric is decided yet: the always-valid "
        "intervals still include both no effect and the target"
    )


def experiment_frame_rows(experiment: pd.DataFrame, settings: Settings) -> list[dict]:
    """All result rows of one experiment: estimates, corrections, guardrails and the decision."""
    rows, error = metric_rows(experiment, settings)
    first = experiment.iloc[0]
    # the sample-ratio test of marts.experiment_results, on the same exposed users
    shares, split_error = parse_split(first["planned_split"])
    users = {r["variant"]: r["users"] for r in rows if r["metric"] == rows[0]["metric"] and r["is_planned_variant"]}
    shares = planned_shares(shares, split_error, users)
    srm = math.nan if shares is None else srm_p_value(users, shares)
    correct(rows, settings)
    decision, variant, reason = decide(rows, srm, settings)
    rules = DECISION_RULES.format(srm_alpha=settings.srm_alpha)
    for row in rows:
        for working_value in ("lift_se", "estimate_users"):  # used above, not columns
            row.pop(working_value, None)
        row.update(decision=decision, decision_variant=variant, decision_reason=reason, decision_rules=rules,
                   config_error=error)  # fmt: skip
    return rows


def results_frame(moments: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """marts.experiment_metric_results from the rows of intermediate.int_experiment_metric_moments."""
    rows: list[dict] = []
    for _, experiment in moments.groupby("experiment_id", sort=True):
        try:
            rows.extend(experiment_frame_rows(experiment, settings))
        except Exception as error:  # one experiment's surprise must not fail the others (or the run)
            rows.extend(values_only(experiment, f"statistics not computed: {type(error).__name__}: {error}"))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in COLUMNS:
        if column in STRINGS:
            frame[column] = frame[column].astype("string")
        elif column in BOOLEANS:
            frame[column] = frame[column].astype("boolean")
        elif column in INTEGERS:
            frame[column] = frame[column].astype("Int64")
        else:
            # nullable, so that "not defined" (the control's lift, a metric without CUPED, days left with no
            # traffic) lands as NULL
            numbers = pd.to_numeric(frame[column]).replace([math.inf, -math.inf], math.nan)
            frame[column] = numbers.astype("Float64")
    return frame


def values_only(experiment: pd.DataFrame, error: str) -> list[dict]:
    """Users and values only (as far as they are numbers), when an experiment's statistics could not be computed."""
    out = []
    for row in experiment.itertuples(index=False):
        users, total = number_or(row.users, math.nan), number_or(row.sum_y, math.nan)
        result = dict.fromkeys(COLUMNS, math.nan)
        result.update(
            experiment_id=row.experiment_id, metric=row.metric, kind=row.kind, role=row.role,
            direction=row.direction, tolerance=row.tolerance, variant=row.variant,
            is_control=row.variant == row.control_variant, is_planned_variant=False, users=users,
            users_window_complete=number_or(row.users_window_complete, math.nan),
            exposure_days=number_or(row.exposure_days, math.nan), value=total / users if users else math.nan,
            estimate=None, correction=None, guardrail_status=None, is_significant=None, decision="keep running",
            decision_variant=None, decision_reason="the statistics could not be computed (see config_error)",
            decision_rules=None, config_error=error[:500],
        )  # fmt: skip
        out.append(result)
    return out


def transform(lines: Iterable[str], settings: Settings) -> Iterator[str]:
    """Spark's script transform: moment rows as JSON lines in, result rows as JSON lines out."""
    moments = json_lines_in(lines, MOMENT_COLUMNS)
    if moments is not None:
        yield from json_lines_out(results_frame(moments, settings))


def main(argv: list[str] | None = None) -> None:
    """`python -m ml.experiment_metric_results ALPHA POWER SRM_ALPHA TUNING_USERS` over standard input/output."""
    args = sys.argv[1:] if argv is None else argv
    settings = Settings(float(args[0]), float(args[1]), float(args[2]), int(args[3]))
    for line in transform(sys.stdin, settings):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
