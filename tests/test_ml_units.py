"""Small pure parts of the ML code worked out by hand: the champion gate, training reasons, risk tiers, stable
cluster ids by Hungarian matching, cluster names, time splits and the data hash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnParams, risk_tier, time_folds, time_split
from ml.clustering import match_to_previous, name_clusters
from ml.features import CLUSTER_FEATURES, frame_hash
from ml.tracking import gate
from orchestration.defs.ml.assets import training_reasons


def test_gate_promotes_only_a_strictly_better_candidate():
    assert gate(0.81, None)
    assert gate(0.81, float("nan"))
    assert gate(0.81, 0.80)
    assert not gate(0.80, 0.80)
    assert not gate(0.79, 0.80)
    assert gate(0.10, 0.12, higher_is_better=False)


def test_training_reasons():
    as_of = pd.Timestamp("2026-10-31")
    common = {"requested_by": None, "drift_mark": None, "as_of": as_of, "max_age_days": 7}
    assert training_reasons(champion=None, champion_as_of=None, **common) == ["no champion yet"]
    assert training_reasons(champion="3", champion_as_of=pd.Timestamp("2026-10-28"), **common) == []
    stale = training_reasons(champion="3", champion_as_of=pd.Timestamp("2026-10-21"), **common)
    assert stale == ["champion v3 was trained on data 10.0 days older than as_of"]
    forced = training_reasons(
        champion="3",
        champion_as_of=as_of,
        requested_by="ml_weekly_training",
        drift_mark="PSI",
        as_of=as_of,
        max_age_days=7,
    )
    assert forced == ["requested by ml_weekly_training", "marked for retraining: PSI"]


def test_risk_tiers_from_calibrated_probability():
    tiers = risk_tier(np.array([0.0, 0.29, 0.3, 0.59, 0.6, 1.0]))
    assert tiers.tolist() == ["low", "low", "medium", "medium", "high", "high"]


def previous_centroids(rows: list[list[float]], ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(CLUSTER_FEATURES), index=pd.Index(ids, name="cluster_id"))


def test_new_clusters_take_the_ids_of_the_nearest_previous_ones():
    # previous clusters 1, 2, 5 (ids need not be contiguous); new clusters come in another order plus one more
    base = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    previous = previous_centroids([base, [1.0, 0, 0, 0, 0, 1.0], [0, 1.0, 0, 0, 0, 1.0]], [1, 2, 5])
    new = np.array(
        [
            [0, 0.95, 0, 0, 0, np.log1p(1.0)],
            [0, 0, 0, 0, 0, np.log1p(1.0)],
            [0.9, 0, 0, 0, 0, np.log1p(1.0)],
            [0.5, 0.5, 0, 0, 0, np.log1p(1.0)],
        ]
    )
    scale = (np.zeros(6), np.ones(6))
    id_map, distances = match_to_previous(new, previous, scale)
    # new 0 ~ old 5, new 1 ~ old 1, new 2 ~ old 2; the extra cluster gets the next free id, 6
    assert id_map == {0: 5, 1: 1, 2: 2, 3: 6}
    assert distances[5] == pytest.approx(0.05) and distances[1] == pytest.approx(0.0)
    assert distances[2] == pytest.approx(0.1)
    fresh, _ = match_to_previous(new, None, scale)
    assert fresh == {0: 1, 1: 2, 2: 3, 3: 4}


def test_cluster_names_follow_the_profiles():
    # columns: coupon, feature use, product views, cart adds, page views, events per session
    centroids = previous_centroids(
        [[0.8, 0.05, 0.3, 0.12, 0.4, 5.0], [0.02, 0.40, 0.15, 0.06, 0.30, 8.0], [0.02, 0.05, 0.2, 0.04, 0.6, 4.0]],
        [1, 2, 3],
    )
    names = name_clusters(centroids, centroids.mean(), centroids.std())
    assert names == {1: "discount seekers", 2: "power users", 3: "casual browsers"}


def snapshots_at(days: list[str], per_cutoff: int = 4) -> pd.DataFrame:
    rows = [
        {"user_id": f"u{i}", "cutoff_at": pd.Timestamp(day), "is_churned": i % 2 == 0}
        for day in days
        for i in range(per_cutoff)
    ]
    return pd.DataFrame(rows)


def test_time_split_purges_cutoffs_whose_labels_overlap_the_holdout():
    days = ["2026-06-01", "2026-06-15", "2026-06-29", "2026-07-13", "2026-07-27"]
    split = time_split(snapshots_at(days), ChurnParams(churn_window_days=30))
    assert split.holdout_cutoff == pd.Timestamp("2026-07-27")
    # training labels end by cutoff + 30 days <= the holdout cutoff: 06-01, 06-15 and 06-27 would, 06-29 does not
    assert sorted(split.train["cutoff_at"].unique()) == [pd.Timestamp("2026-06-01"), pd.Timestamp("2026-06-15")]
    assert split.purged_cutoffs == [pd.Timestamp("2026-06-29"), pd.Timestamp("2026-07-13")]
    folds = time_folds(snapshots_at(days[:4]), ChurnParams(churn_window_days=14, cv_folds=2))
    # validate on 07-13 (fit on cutoffs up to 06-29) and 06-29 (fit up to 06-15)
    assert [(len(fit), len(validate)) for fit, validate in folds] == [(8, 4), (12, 4)]


def test_frame_hash_ignores_row_and_column_order_but_not_values():
    frame = pd.DataFrame({"user_id": ["a", "b"], "x": [1.0, 2.0]})
    shuffled = frame.iloc[::-1][["x", "user_id"]]
    assert frame_hash(frame) == frame_hash(shuffled)
    assert frame_hash(frame) != frame_hash(frame.assign(x=[1.0, 2.5]))
