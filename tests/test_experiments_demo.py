"""Experiments on generated demo data: the planted A/B lift and factorial effects lie inside the reported intervals
(also CUPED's, CUPAC's and the always-valid ones, which the planted pre-period buyers narrow), an injected
sample-ratio mismatch is flagged and stops the experiment, and the factorial asset logs its fit to MLflow beside its
inputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from demo_events import GeneratorConfig, Truth, generate
from ingestion import IngestSettings, ingest_landing
from ml.settings import tracking_uri
from orchestration.defs.experiments.assets import experiment_factorial_effects
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import WarehouseResource
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow

CONFIG = GeneratorConfig(users=2500, seed=11, months=3, file_rows=100_000)
BUILD = ["build", "--select", "+experiment_results", "+experiment_decisions", "--exclude-resource-type", "test",
         "unit_test"]  # fmt: skip


def broken_copy(data_dir: Path) -> list[dict]:
    """The A/B test's exposures logged again as experiment checkout_copy by a client that loses a quarter of the
    treatment's views (every fourth treatment user): a sample-ratio mismatch with the true assignment underneath."""
    users = pq.read_table(data_dir / "demo_truth" / "users.parquet", columns=["user_id", "variant", "exposed_at"])
    exposed = users.filter(pc.is_valid(users["variant"])).sort_by("user_id").to_pylist()
    rows, treatment_seen = [], 0
    for number, user in enumerate(exposed):
        if user["variant"] == "treatment":
            treatment_seen += 1
            if treatment_seen % 4 == 0:
                continue
        moment = user["exposed_at"].isoformat().replace("+00:00", "Z")
        rows.append(
            event(
                f"copy-{number:06d}",
                user["user_id"],
                event="Experiment Viewed",
                timestamp=moment,
                received_at=moment,
                properties={"experiment_id": "checkout_copy", "variant": user["variant"]},
            )
        )
    return rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    data_dir = tmp_path_factory.mktemp("experiments_demo") / "data"
    truth = generate(CONFIG, data_dir)
    write_lines(data_dir / "landing" / "broken_copy.jsonl", broken_copy(data_dir))
    ingest_landing(replace(IngestSettings(data_dir=data_dir), settle_seconds=0))
    run_dbt(data_dir, *BUILD)
    return data_dir, truth


def results(data_dir: Path, experiment_id: str) -> dict[str, dict]:
    columns = ["variant", "users", "conversions", "lift_vs_control", "lift_ci_low", "lift_ci_high", "p_value",
               "srm_p_value", "has_sample_ratio_mismatch", "is_underpowered"]  # fmt: skip
    rows = query(data_dir, f"select {', '.join(columns)} from marts.experiment_results where experiment_id = ?",
                 [experiment_id])  # fmt: skip
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def test_counts_match_the_generators_truth(demo):
    data_dir, truth = demo
    ab = results(data_dir, "checkout_redesign")
    assert {v: r["users"] for v, r in ab.items()} == truth.experiment["exposed"]
    assert {v: r["conversions"] for v, r in ab.items()} == truth.experiment["converted"]
    factorial = results(data_dir, "onboarding_2x2")
    assert {v: r["users"] for v, r in factorial.items()} == truth.factorial["exposed"]
    assert {v: r["conversions"] for v, r in factorial.items()} == truth.factorial["converted"]


def test_the_planted_lift_lies_inside_the_reported_interval(demo):
    data_dir, truth = demo
    treatment = results(data_dir, "checkout_redesign")["treatment"]
    assert treatment["lift_ci_low"] < truth.experiment["true_lift"] == 0.15 < treatment["lift_ci_high"]
    assert treatment["lift_vs_control"] == pytest.approx(truth.experiment["realised_lift"])
    assert treatment["srm_p_value"] > 0.001 and not treatment["has_sample_ratio_mismatch"]
    assert not treatment["is_underpowered"]


def test_variance_reduction_and_the_always_valid_interval_hold_the_planted_lift(demo):
    """Pre-period buyers convert 8 times as often (the generator's plant): adjusting by the pre-period narrows the
    conversion interval, and CUPED's, CUPAC's and the always-valid intervals all hold the planted +15%."""
    data_dir, truth = demo
    [row] = query(
        data_dir,
        "select estimate, variance_reduction, cupac_variance_reduction, cuped_ci_low, cuped_ci_high, cupac_ci_low, "
        "cupac_ci_high, sequential_ci_low, sequential_ci_high, lift_ci_high - lift_ci_low, cupac_ci_high - "
        "cupac_ci_low, decision from marts.experiment_metric_results where experiment_id = 'checkout_redesign' "
        "and metric = 'conversion' and variant = 'treatment'",
    )
    estimate, cuped_reduction, cupac_reduction, *bounds, raw_width, cupac_width, decision = row
    assert estimate == "cupac" and cuped_reduction > 0.1 and cupac_reduction >= cuped_reduction - 0.01
    planted = truth.experiment["true_lift"]
    for low, high in zip(bounds[::2], bounds[1::2], strict=True):
        assert low < planted < high
    assert cupac_width < raw_width * 0.95
    assert decision in ("keep running", "ship")
    # the copy that lost a quarter of the treatment's views: stopped, whatever its metrics say
    [copy] = query(data_dir, "select decision from marts.experiment_decisions where experiment_id = 'checkout_copy'")
    assert copy == ("stop: sample ratio mismatch",)


def test_factorial_effects_cover_the_planted_ones_and_are_logged_to_mlflow(demo, monkeypatch):
    data_dir, truth = demo
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    result = dg.materialize(
        [experiment_factorial_effects],
        resources={
            "warehouse": WarehouseResource(data_dir=str(data_dir)),
            "mlflow": MLflowResource(),
        },
    )
    assert result.success
    effects = query(data_dir, "select effect, log_odds, ci_low, ci_high, p_value, mlflow_run_id "
                              "from ml.experiment_factorial_effects order by effect")  # fmt: skip
    planted = truth.factorial["log_odds_effects"]
    names = {"tour=tour_on": "tour", "badge=badge_on": "badge", "tour=tour_on:badge=badge_on": "tour:badge"}
    assert {row[0] for row in effects} == set(names)
    for effect, log_odds, low, high, p_value, _ in effects:
        assert low < planted[names[effect]] < high, (effect, log_odds, low, high)
        assert 0 <= p_value <= 1

    # the same model fitted per user with statsmodels' formula API gives the same estimates
    users = pd.DataFrame(
        query(data_dir, "select variant, converted from intermediate.int_experiment_exposures "
                        "where experiment_id = 'onboarding_2x2'"), columns=["variant", "converted"])  # fmt: skip
    users["tour"] = users["variant"].str.startswith("tour_on").astype(int)
    users["badge"] = users["variant"].str.endswith("badge_on").astype(int)
    users["converted"] = users["converted"].astype(int)
    per_user = smf.logit("converted ~ tour * badge", users).fit(disp=0)
    by_name = {row[0]: row for row in effects}
    for effect, term in (
        ("tour=tour_on", "tour"),
        ("badge=badge_on", "badge"),
        ("tour=tour_on:badge=badge_on", "tour:badge"),
    ):
        assert by_name[effect][1] == pytest.approx(per_user.params[term], rel=1e-6)
        assert by_name[effect][2] == pytest.approx(per_user.conf_int().loc[term, 0], rel=1e-5)
        assert by_name[effect][4] == pytest.approx(per_user.pvalues[term], rel=1e-5)

    run = mlflow.MlflowClient(tracking_uri()).get_run(effects[0][5])
    assert run.data.params["factors"] == "tour;badge"
    assert run.data.metrics["tour_tour_on.log_odds"] == pytest.approx(by_name["tour=tour_on"][1])
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["onboarding_2x2_cells"]
    artifacts = {a.path for a in mlflow.MlflowClient(tracking_uri()).list_artifacts(run.info.run_id)}
    assert {"effects.csv", "inputs"} <= artifacts
    assert tracking_uri().startswith("sqlite:///") and str(data_dir) in tracking_uri()


def test_an_injected_sample_ratio_mismatch_is_flagged(demo):
    data_dir, truth = demo
    copy = results(data_dir, "checkout_copy")  # not in the seed: equal planned split, control named control
    exposed = truth.experiment["exposed"]
    assert copy["control"]["users"] == exposed["control"]
    assert copy["treatment"]["users"] == exposed["treatment"] - exposed["treatment"] // 4
    expected = stats.chisquare([copy["control"]["users"], copy["treatment"]["users"]]).pvalue
    assert copy["control"]["srm_p_value"] == pytest.approx(expected) and expected < 1e-6
    assert copy["control"]["has_sample_ratio_mismatch"] and copy["treatment"]["has_sample_ratio_mismatch"]
    # the experiments logged correctly are not flagged
    for experiment in ("checkout_redesign", "onboarding_2x2"):
        assert not any(r["has_sample_ratio_mismatch"] for r in results(data_dir, experiment).values())
