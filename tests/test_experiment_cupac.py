"""ml/experiment_cupac.py: CUPAC's cross-fitted predictions (each user predicted by models that never saw them,
from inputs that precede the exposure), and the two-covariate adjustment it feeds (ml/experiment_stats.py
regression_adjusted) checked against CUPED with one covariate and against statsmodels' OLS with two."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from ml.experiment_cupac import FOLDS, INPUT_COLUMNS, MIN_USERS, cupac_frame, fold_of
from ml.experiment_stats import CovariateSums, Moments, compare, regression_adjusted
from ml.features import CHURN_FEATURES


def users(n: int, seed: int = 0, metric: str = "m") -> pd.DataFrame:
    """n exposed users whose metric follows orders_90 and their pre-period value, plus noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in CHURN_FEATURES})
    frame["pre_period_value"] = rng.poisson(1.0, n).astype(float)
    frame["has_history"] = True
    frame["metric_value"] = 2 * frame["orders_90"] + frame["pre_period_value"] + rng.normal(size=n)
    frame["experiment_id"], frame["metric"] = "e", metric
    frame["user_id"] = [f"u{i:05d}" for i in range(n)]
    return frame[INPUT_COLUMNS]


def test_predictions_are_cross_fitted_and_do_not_depend_on_row_order():
    frame = users(400)
    predicted = cupac_frame(frame).set_index("user_id")["cupac_prediction"].astype(float)
    # the metric is mostly explained: the predictions correlate with it strongly
    truth = frame.set_index("user_id")["metric_value"]
    assert np.corrcoef(predicted, truth.loc[predicted.index])[0, 1] > 0.8
    # a user's own outcome never shapes their prediction: change it and only other folds' models move
    changed = frame.copy()
    changed.loc[changed.user_id == "u00007", "metric_value"] += 1000
    again = cupac_frame(changed).set_index("user_id")["cupac_prediction"].astype(float)
    assert again["u00007"] == pytest.approx(predicted["u00007"], rel=1e-12)
    same_fold = [u for u in predicted.index if fold_of(u) == fold_of("u00007")]
    assert np.allclose(again[same_fold], predicted[same_fold], rtol=1e-12)
    # the same rows in any order give the same predictions (both engines hand them over in their own order)
    shuffled = cupac_frame(frame.sample(frac=1.0, random_state=3)).set_index("user_id")["cupac_prediction"]
    assert np.array_equal(shuffled.loc[predicted.index].astype(float), predicted)


def test_folds_are_a_stable_hash_and_small_or_flat_groups_get_no_prediction():
    assert [fold_of(u) for u in ("a", "b", "c")] == [fold_of(u) for u in ("a", "b", "c")]
    assert {fold_of(f"u{i}") for i in range(200)} == set(range(FOLDS))
    small = users(MIN_USERS - 1, metric="small")
    flat = users(200, metric="flat").assign(metric_value=3.0)
    hostile = users(200, metric="hostile").assign(orders_90=np.inf, avg_order_value=np.nan)
    result = cupac_frame(pd.concat([small, flat, hostile, users(200)]))
    by_metric = result.groupby("metric")["cupac_prediction"].count().to_dict()
    assert by_metric == {"small": 0, "flat": 0, "hostile": 200, "m": 200}


def test_the_adjustment_by_two_covariates():
    rng = np.random.default_rng(1)
    n = 800
    zc, zt = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    yc = 5 + zc @ [1.0, 0.5] + rng.normal(size=n)
    yt = 5.5 + zt @ [1.0, 0.5] + rng.normal(size=n)
    # one covariate: exactly CUPED
    one = regression_adjusted(CovariateSums.of(yc, zc[:, :1]), CovariateSums.of(yt, zt[:, :1]))
    cuped = compare(Moments.of(yc, zc[:, 0]), Moments.of(yt, zt[:, 0]), cuped=True)
    assert (one.difference, one.difference_se, one.lift, one.lift_se, one.variance_reduction) == pytest.approx(
        (cuped.difference, cuped.difference_se, cuped.lift, cuped.lift_se, cuped.variance_reduction), rel=1e-12
    )
    # two covariates: the OLS of y on treatment and both centred covariates, within 5% of its standard error (the
    # pooled theta is not quite OLS's within-arm slope)
    two = regression_adjusted(CovariateSums.of(yc, zc), CovariateSums.of(yt, zt))
    z = np.vstack([zc, zt])
    design = sm.add_constant(np.column_stack([np.r_[np.zeros(n), np.ones(n)], z - z.mean(0)]))
    fit = sm.OLS(np.r_[yc, yt], design).fit()
    assert abs(two.difference - fit.params[1]) < 0.05 * fit.bse[1]
    assert two.difference_se == pytest.approx(fit.bse[1], rel=0.01)
    # 1 - 1 / (1 + 1.25): the covariates explain 1.25 of y's variance 2.25 in both arms
    assert two.variance_reduction == pytest.approx(1.25 / 2.25, abs=0.05)
    # a duplicated covariate changes nothing (pseudo-inverse)
    dup = regression_adjusted(
        CovariateSums.of(yc, np.column_stack([zc, zc[:, 0]])), CovariateSums.of(yt, np.column_stack([zt, zt[:, 0]]))
    )
    assert dup.difference == pytest.approx(two.difference, rel=1e-9)


def test_the_sql_feature_list_is_the_churn_models():
    """macro ml_feature_names (the columns int_experiment_user_features carries) lists CHURN_FEATURES, in order."""
    macro = (Path(__file__).parents[1] / "dbt_project" / "macros" / "ml_features.sql").read_text()
    body = macro[macro.index("macro ml_feature_names") :]
    body = body[: body.index("endmacro")]
    assert tuple(re.findall(r"'(\w+)'", body)) == CHURN_FEATURES
