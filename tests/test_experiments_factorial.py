"""ml/experiments.py on hand-made cell counts: the saturated 2x2 logit's effects are differences of log-odds."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from ml.experiments import FactorialDesign, fit_factorial, parse_design

CELLS = pd.DataFrame(
    {
        "variant": ["a0+b0", "a1+b0", "a0+b1", "a1+b1"],
        "users": [400, 380, 410, 390],
        "conversions": [40, 76, 62, 70],
    }
)


def logit(x: int, n: int) -> float:
    return math.log(x / (n - x))


def test_saturated_two_by_two_effects_match_hand_computed_log_odds():
    result = fit_factorial("e", "a;b", "a0+b0", CELLS, min_users_per_cell=100)
    assert result.skipped is None
    effects = result.effects.set_index("effect")
    (x00, n00), (x10, n10), (x01, n01), (x11, n11) = zip(CELLS["conversions"], CELLS["users"], strict=True)
    inverse = {key: 1 / x + 1 / (n - x) for key, x, n in
               (("00", x00, n00), ("10", x10, n10), ("01", x01, n01), ("11", x11, n11))}  # fmt: skip
    expected = {
        "a=a1": (logit(x10, n10) - logit(x00, n00), inverse["00"] + inverse["10"]),
        "b=b1": (logit(x01, n01) - logit(x00, n00), inverse["00"] + inverse["01"]),
        "a=a1:b=b1": (
            logit(x11, n11) - logit(x10, n10) - logit(x01, n01) + logit(x00, n00),
            sum(inverse.values()),
        ),
    }
    assert list(effects.index) == list(expected)
    z = stats.norm.ppf(0.975)
    for name, (estimate, variance) in expected.items():
        row = effects.loc[name]
        se = math.sqrt(variance)
        assert row["log_odds"] == pytest.approx(estimate, abs=1e-8)
        assert row["std_error"] == pytest.approx(se, rel=1e-6)
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(estimate - z * se, abs=1e-6),
                                                   pytest.approx(estimate + z * se, abs=1e-6))  # fmt: skip
        assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(estimate / se)), rel=1e-5)
        assert row["odds_ratio"] == pytest.approx(math.exp(estimate))
    assert set(effects["users"]) == {1580}


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (CELLS.iloc[:3], "3 of the 4 cells"),
        (CELLS.assign(users=[400, 20, 410, 390]), "cells below 100 users: a1+b0 (20)"),
        (CELLS.assign(conversions=[0, 76, 62, 70]), "nobody or everybody converted"),
        (CELLS.iloc[1:], "no exposures of the control variant"),
    ],
)
def test_too_little_data_is_skipped_with_the_reason(cells, reason):
    result = fit_factorial("e", "a;b", "a0+b0", cells, min_users_per_cell=100)
    assert reason in result.skipped and result.effects.empty


def test_bad_variant_names_are_a_clear_error():
    with pytest.raises(ValueError, match=r"'e'.*variant 'a1' must name one level of each factor \['a', 'b'\]"):
        parse_design("e", "a;b", "a0+b0", ["a0+b0", "a1"])
    with pytest.raises(ValueError, match="2\\+ distinct names"):
        parse_design("e", "a", "a0", ["a0", "a1"])


def test_three_level_factor_gets_an_effect_per_level_and_interaction():
    design = parse_design("e", "a;b", "a0+b0", ["a0+b0", "a1+b0", "a2+b0", "a0+b1", "a1+b1", "a2+b1"])
    assert design == FactorialDesign("e", ("a", "b"), {"a": ("a0", "a1", "a2"), "b": ("b0", "b1")})
    assert design.effect_names() == ["a=a1", "a=a2", "b=b1", "a=a1:b=b1", "a=a2:b=b1"]


def test_each_fit_is_one_run_in_this_data_dirs_store_and_the_environment_stays_clean(tmp_path, monkeypatch):
    import os

    from mlflow.tracking import MlflowClient

    from ml.experiments import log_to_mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    result = fit_factorial("e", "a;b", "a0+b0", CELLS, min_users_per_cell=100)
    run_id = log_to_mlflow(result, experiment_id="e")
    log_to_mlflow(result, experiment_id="e")  # the second fit finds the experiment the first created
    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("factorial_experiments")
    assert store.get_run(run_id).info.experiment_id == experiment.experiment_id
    assert len(store.search_runs([experiment.experiment_id])) == 2
    # mlflow's set_tracking_uri / set_experiment would leave these behind for the next DATA_DIR in the process
    assert not {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"} & set(os.environ)
