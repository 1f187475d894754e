"""ml/experiment_metric_results.py (marts.experiment_metric_results and experiment_decisions) on moment rows built
from planted per-user values: CUPED chosen where the metric has a pre-period, the correction over primary and
secondary metrics only, power by the textbook formula, every decision rule planted, and client variant names that
are reported, never fatal. The dbt models over a hand-written log are in tests/test_experiment_metrics.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ml.experiment_metric_results import MOMENT_COLUMNS, Settings, results_frame, transform
from ml.experiment_stats import (
    CovariateSums,
    Moments,
    compare,
    confidence_sequence,
    fixed_interval,
    regression_adjusted,
)

SETTINGS = Settings(alpha=0.05, power=0.8, srm_alpha=0.001, tuning_users=5000)


def moment_row(experiment: str, metric: str, variant: str, y, x=None, d=None, **settings) -> dict:
    """One row of int_experiment_metric_moments from per-user values."""
    m = Moments.of(np.asarray(y, dtype=float), x, d)
    row = {
        "experiment_id": experiment, "metric": metric, "kind": "count", "variant": variant, "role": "primary",
        "direction": "increase", "tolerance": None, "pre_period_days": 28 if x is not None else 0, "cap_value": None,
        "control_variant": "control", "planned_split": "control=1;treatment=1", "factors": None,
        "correction": "holm", "target_lift": 0.10, "exposure_days": 10, "users": m.n, "users_window_complete": m.n,
        "sum_y": m.sum_y, "sum_y2": m.sum_y2, "sum_x": m.sum_x, "sum_x2": m.sum_x2, "sum_xy": m.sum_xy,
        "sum_d": m.sum_d, "sum_d2": m.sum_d2, "sum_yd": m.sum_yd,
    }  # fmt: skip
    row.update(settings)
    return row


def arms(rng: np.random.Generator, n: int, mean: float, lift: float, correlation: float = 0.0):
    """Control and treatment values (y, x): y = mean + noise, x correlated with y's noise, treatment scaled."""
    out = []
    for scale in (1.0, 1.0 + lift):
        x = rng.normal(0, 1, n)
        noise = correlation * x + math.sqrt(1 - correlation**2) * rng.normal(0, 1, n)
        out.append((mean * scale + noise, x))
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    return results_frame(pd.DataFrame(rows, columns=MOMENT_COLUMNS), SETTINGS)


def one(results: pd.DataFrame, metric: str, variant: str = "treatment") -> pd.Series:
    match = results[(results.metric == metric) & (results.variant == variant)]
    assert len(match) == 1
    return match.iloc[0]


def test_cuped_is_the_estimate_where_the_metric_has_a_pre_period_and_raw_for_ratios():
    rng = np.random.default_rng(1)
    (yc, xc), (yt, xt) = arms(rng, 2000, 5.0, 0.04, correlation=0.8)
    d = np.ones(2000) * 2
    results = frame([
        moment_row("e", "m", "control", yc, xc), moment_row("e", "m", "treatment", yt, xt),
        moment_row("e", "r", "control", yc, d=d, kind="ratio", role="secondary"),
        moment_row("e", "r", "treatment", yt, d=d, kind="ratio", role="secondary"),
    ])  # fmt: skip
    m = one(results, "m")
    expected = compare(Moments.of(yc, xc), Moments.of(yt, xt), cuped=True)
    raw = compare(Moments.of(yc, xc), Moments.of(yt, xt))
    assert m["estimate"] == "cuped"
    assert m["estimate_lift"] == pytest.approx(expected.lift) and m["lift"] == pytest.approx(raw.lift)
    assert (m["cuped_ci_low"], m["cuped_ci_high"]) == pytest.approx(fixed_interval(expected.lift, expected.lift_se))
    # with correlation 0.8, CUPED removes about 0.64 of the variance
    assert m["variance_reduction"] == pytest.approx(0.64, abs=0.05)
    assert (m["sequential_ci_low"], m["sequential_ci_high"]) == pytest.approx(
        confidence_sequence(expected.lift, expected.lift_se, 4000)
    )
    r = one(results, "r")
    ratio = compare(Moments.of(yc, d=d), Moments.of(yt, d=d), ratio=True)
    assert r["estimate"] == "raw" and pd.isna(r["cuped_lift"]) and pd.isna(r["variance_reduction"])
    assert r["value"] == pytest.approx(yt.sum() / d.sum()) and r["lift"] == pytest.approx(ratio.lift)
    control = one(results, "m", "control")
    assert pd.isna(control["lift"]) and pd.isna(control["estimate_lift"]) and bool(control["is_control"])


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_the_correction_runs_over_primary_and_secondary_metrics_and_leaves_guardrails_alone(correction, method):
    rng = np.random.default_rng(2)
    rows, raw_p = [], []
    for i, (role, lift) in enumerate([("primary", 0.06), ("secondary", 0.0), ("secondary", 0.03),
                                      ("guardrail", 0.0)]):  # fmt: skip
        (yc, _), (yt, _) = arms(rng, 1500, 5.0, lift)
        for variant, y in (("control", yc), ("treatment", yt)):
            rows.append(moment_row("e", f"m{i}", variant, y, role=role, correction=correction))
        if role != "guardrail":
            c = compare(Moments.of(yc), Moments.of(yt))
            raw_p.append(2 * stats.norm.sf(abs(c.lift / c.lift_se)))
    results = frame(rows)
    reject, adjusted, _, _ = multipletests(raw_p, alpha=0.05, method=method)
    for i in range(3):
        row = one(results, f"m{i}")
        assert row["p_value"] == pytest.approx(raw_p[i])
        assert row["adjusted_p_value"] == pytest.approx(adjusted[i])
        assert bool(row["is_significant"]) == bool(reject[i])
        assert row["adjusted_sequential_ci_low"] <= row["sequential_ci_low"]
    guardrail = one(results, "m3")
    assert pd.isna(guardrail["adjusted_p_value"]) and guardrail["guardrail_status"] in ("within tolerance",
                                                                                        "not yet known")  # fmt: skip
    # Holm's intervals are Bonferroni's: alpha / 3 for three tests
    if correction == "holm":
        row = one(results, "m0")
        se = (row["lift_ci_high"] - row["lift_ci_low"]) / (2 * stats.norm.ppf(0.975))
        assert row["adjusted_ci_high"] - row["adjusted_ci_low"] == pytest.approx(2 * stats.norm.ppf(1 - 0.05 / 6) * se)


def test_power_figures_follow_the_textbook_formula():
    """Equal arms of n users with standard deviation sigma: n per arm for a relative lift L on mean mu is
    2 (z_.975 + z_.8)^2 sigma^2 / (L mu)^2; the MDE at n is (z_.975 + z_.8) sigma sqrt(2 / n) / mu."""
    y = np.tile([0.0, 10.0], 500)  # mean 5, sample sd 5.0025
    results = frame([moment_row("e", "m", "control", y), moment_row("e", "m", "treatment", y)])
    row = one(results, "m")
    sigma, z = y.std(ddof=1), stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    per_arm = 2 * z**2 * sigma**2 / (0.10 * 5.0) ** 2
    assert row["users_needed"] == pytest.approx(2 * per_arm, rel=1e-4)
    assert row["mde"] == pytest.approx(z * sigma * math.sqrt(2 / 1000) / 5.0, rel=1e-4)
    # 2,000 users over 10 exposure days = 200 a day
    assert row["days_left"] == pytest.approx((2 * per_arm - 2000) / 200, rel=1e-4)
    assert row["decision"] == "keep running"
    assert row["decision_reason"].startswith(
        f"not enough users yet: detecting a 10% lift on m needs {math.ceil(2 * per_arm):,} users in treatment and "
        f"control, about {math.ceil((2 * per_arm - 2000) / 200):,} days at the traffic so far"
    )


def decision_of(rows: list[dict]) -> tuple[str, str | None, str]:
    row = frame(rows).iloc[0]
    return (
        row["decision"],
        None if pd.isna(row["decision_variant"]) else row["decision_variant"],
        row["decision_reason"],
    )


def test_each_decision_rule_planted():
    rng = np.random.default_rng(3)
    (yc, _), (yt, _) = arms(rng, 6000, 5.0, 0.10)
    winner = [moment_row("e", "m", "control", yc), moment_row("e", "m", "treatment", yt)]
    decision, variant, reason = decision_of(winner)
    assert (decision, variant) == ("ship", "treatment") and reason.startswith("treatment wins on every primary")

    # the same winner with a guardrail 20% worse (tolerance 5%): stop
    (gc, _), (gt, _) = arms(rng, 6000, 5.0, -0.20)
    guard = [moment_row("e", "g", "control", gc, role="guardrail", tolerance=0.05),
             moment_row("e", "g", "treatment", gt, role="guardrail", tolerance=0.05)]  # fmt: skip
    assert decision_of(winner + guard)[:2] == ("stop: guardrail breached", None)
    # a decrease-is-good guardrail that went down is fine
    for row in guard:
        row["direction"] = "decrease"
    assert decision_of(winner + guard)[0] == "ship"

    # 6,000 vs 5,000 against a planned 1:1 split: sample ratio mismatch comes first
    srm = [moment_row("e", "m", "control", yc[:5000]), moment_row("e", "m", "treatment", yt)]
    decision, _, reason = decision_of(srm)
    assert decision == "stop: sample ratio mismatch" and "planned split" in reason

    # no effect and a tight interval: a 10% lift is ruled out
    (nc, _), (nt, _) = arms(rng, 20000, 5.0, 0.0)
    assert decision_of([moment_row("e", "m", "control", nc), moment_row("e", "m", "treatment", nt)])[0] == (
        "stop: no effect of target size"
    )
    # no primary metric: nothing to decide on
    secondary = [dict(row, role="secondary") for row in winner]
    assert decision_of(secondary)[2].startswith("no primary metric")


def test_unplanned_and_hostile_variants_are_reported_never_compared():
    rng = np.random.default_rng(4)
    (yc, _), (yt, _) = arms(rng, 500, 5.0, 0.0)
    hostile = "t\treatment\n" + "x" * 500
    rows = [moment_row("e", "m", "control", yc), moment_row("e", "m", "treatment", yt),
            moment_row("e", "m", hostile, yt[:20]), moment_row("e", "m", "(other unplanned)", yt[:5])]  # fmt: skip
    results = frame(rows)
    assert len(results) == 4
    for name in (hostile, "(other unplanned)"):
        row = one(results, "m", name)
        assert not row["is_planned_variant"] and pd.isna(row["lift"]) and pd.isna(row["adjusted_p_value"])
        assert row["users"] in (20, 5)
    # the SRM test and the comparison use the planned variants only (500 against 500: no mismatch, and a tight
    # interval around no effect)
    assert one(results, "m")["decision"] == "stop: no effect of target size"
    # Spark's script transform: the same rows through JSON lines, the hostile name intact
    lines = [json.dumps({k: v for k, v in row.items() if v is not None}) for row in rows]
    through = pd.DataFrame([json.loads(line) for line in transform(lines, SETTINGS)])
    assert list(through.variant) == list(results.variant)
    assert through.lift.tolist()[1] == pytest.approx(float(results.lift.iloc[1]))


def test_a_bad_seed_row_or_a_broken_experiment_stays_on_its_own_rows():
    rng = np.random.default_rng(5)
    (yc, _), (yt, _) = arms(rng, 500, 5.0, 0.0)
    bad = [moment_row("bad", "m", "control", yc, correction="bonferroni"),
           moment_row("bad", "m", "treatment", yt, correction="bonferroni")]  # fmt: skip
    broken = [moment_row("broken", "m", "control", yc), moment_row("broken", "m", "treatment", yt, users=None)]
    good = [moment_row("good", "m", "control", yc), moment_row("good", "m", "treatment", yt)]
    results = frame(bad + broken + good)
    bad_rows = results[results.experiment_id == "bad"]
    assert bad_rows.config_error.str.contains("correction must be one of holm, bh").all()
    assert (bad_rows.correction == "holm").all() and bad_rows.lift.notna().sum() == 1
    broken_rows = results[results.experiment_id == "broken"]
    assert broken_rows.config_error.str.startswith("statistics not computed").all()
    good_rows = results[results.experiment_id == "good"]
    assert good_rows.config_error.isna().all() and good_rows.lift.notna().sum() == 1


def test_cupac_is_the_estimate_when_every_user_has_a_prediction():
    """CUPAC adjusts by the pre-period value x and the prediction c together (regression_adjusted); with c
    missing for one user, the metric falls back to CUPED."""
    rng = np.random.default_rng(6)
    rows, arms_sums = [], []
    for variant, lift in (("control", 0.0), ("treatment", 0.05)):
        x, c = rng.normal(size=1000), rng.normal(size=1000)
        y = 5 * (1 + lift) + 0.5 * x + 1.0 * c + rng.normal(size=1000)
        row = moment_row("e", "m", variant, y, x)
        row.update(users_cupac=1000, sum_c=c.sum(), sum_c2=(c * c).sum(), sum_cy=(c * y).sum(), sum_xc=(x * c).sum())
        rows.append(row)
        arms_sums.append(CovariateSums.of(y, np.column_stack([x, c])))
    row = one(frame(rows), "m")
    expected = regression_adjusted(*arms_sums)
    assert row["estimate"] == "cupac" and row["estimate_lift"] == pytest.approx(expected.lift)
    assert row["cupac_variance_reduction"] == pytest.approx(expected.variance_reduction)
    # x explains 0.25 of y's variance 2.25, x and c together 1.25
    assert row["variance_reduction"] == pytest.approx(0.25 / 2.25, abs=0.05)
    assert row["cupac_variance_reduction"] == pytest.approx(1.25 / 2.25, abs=0.05)
    rows[1]["users_cupac"] = 999
    assert one(frame(rows), "m")["estimate"] == "cuped"
