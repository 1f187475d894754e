"""Small pure parts of the ML code worked out by hand: the champion gate, training reasons, risk tiers, stable
cluster ids by Hungarian matching, cluster names, the history-aware distance and confidence, cluster profiles from
shrunk shares, the mix pivot, model selection, agreement with planted personas, time splits and the data hash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn import ChurnParams, importance_sample, risk_tier, time_folds, time_split
from ml.clustering import (
    ClusterParams,
    _distances,
    _profiles,
    _Space,
    confidence_of,
    keep_previous_names,
    match_to_previous,
    name_clusters,
    planted_agreement,
    select,
    train_clustering,
)
from ml.features import MIX_EVENTS, frame_hash, mix_column, weight_column, with_mix
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


COLUMNS = ["events_per_session", "mix:action:feature_used", "mix:order_coupon:with coupon", "mix:action:page_viewed"]


def profiles(rows: list[list[float]], ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS, index=pd.Index(ids, name="cluster_id"))


def test_new_clusters_take_the_ids_of_the_nearest_previous_ones():
    # previous clusters 1, 2, 5 (ids need not be contiguous); new clusters come in another order plus one more
    previous = profiles([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0], [1.0, 0, 1.0, 0]], [1, 2, 5])
    new = profiles([[1.0, 0, 0.95, 0], [1.0, 0, 0, 0], [1.0, 0.9, 0, 0], [1.0, 0.5, 0.5, 0]], [0, 1, 2, 3])
    scale = pd.Series(1.0, index=COLUMNS)
    id_map, distances = match_to_previous(new, previous, scale)
    # new 0 ~ old 5, new 1 ~ old 1, new 2 ~ old 2; the extra cluster gets the next free id, 6
    assert id_map == {0: 5, 1: 1, 2: 2, 3: 6}
    assert distances[5] == pytest.approx(0.05) and distances[1] == pytest.approx(0.0)
    assert distances[2] == pytest.approx(0.1)
    fresh, _ = match_to_previous(new, None, scale)
    assert fresh == {0: 1, 1: 2, 2: 3, 3: 4}
    # a previous model with other mix categories is matched on the columns both have; none in common: fresh ids
    other = previous.rename(columns={"mix:action:page_viewed": "mix:action:screen_viewed"})
    assert match_to_previous(new, other, scale)[0] == id_map
    assert match_to_previous(new, previous[[]], scale)[0] == fresh


def test_cluster_names_follow_the_profiles():
    centre = pd.Series([6.0, 0.2, 0.2, 0.3], index=COLUMNS)
    clusters = profiles([[6.0, 0.1, 0.8, 0.3], [9.0, 0.6, 0.1, 0.2], [4.0, 0.1, 0.1, 0.6]], [1, 2, 3])
    names = name_clusters(clusters, centre, pd.Series([2.0, 0.2, 0.3, 0.2], index=COLUMNS))
    assert names == {1: "discount seekers", 2: "power users", 3: "casual browsers"}


def test_distance_compares_a_thin_history_with_each_cluster_seen_at_the_same_history():
    # one rate and two shares of one dimension; population shares (0.5, 0.5); clusters A (0.9, 0.1), B (0.1, 0.9)
    population = np.array([0.5, 0.5])
    rate_centroids, mix_centroids = np.array([[0.0], [0.0]]), np.array([[0.9, 0.1], [0.1, 0.9]])
    ones = (np.ones(1), np.ones(2))
    # weight 0.25 (1 event against a prior of 3): shrunk shares (0.5 + 0.25 * (1 - 0.5), ...) = (0.625, 0.375);
    # A seen at that weight is 0.25 * (0.9, 0.1) + 0.75 * (0.5, 0.5) = (0.6, 0.4), B (0.4, 0.6)
    thin = _Space(np.array([[0.0]]), np.array([[0.625, 0.375]]), np.array([[0.25, 0.25]]))
    d = _distances(thin, rate_centroids, mix_centroids, population, *ones)
    assert d[0].tolist() == pytest.approx([2 * 0.025**2, 2 * 0.225**2])
    # the user leans clearly to A: confidence 1 - 0.025 / 0.225 = 0.89 (against the full profiles, 0.275 and 0.525
    # per share away, a thin history would look half-way between both: 1 - 0.275 / 0.525 = 0.48)
    assert confidence_of(d)[0] == pytest.approx(1 - 0.025 / 0.225)
    # a user with no event in the dimension sits at the population: the same distance to both, confidence 0
    empty = _Space(np.array([[0.0]]), population[None, :], np.zeros((1, 2)))
    d = _distances(empty, rate_centroids, mix_centroids, population, *ones)
    assert d[0, 0] == pytest.approx(d[0, 1]) and confidence_of(d)[0] == 0.0
    assert confidence_of(np.array([[1.0, 4.0, 9.0]]))[0] == pytest.approx(0.5)


def test_cluster_profile_takes_each_members_own_part_of_its_shrunk_shares():
    population = np.array([0.5, 0.5])
    # member 1: weight 0.5, shrunk 0.7 -> own part 0.7 - 0.5 * 0.5 = 0.45; member 2: weight 1, shrunk 1.0 -> 1.0;
    # member 3: no events (weight 0) adds nothing. Profile: (0.45 + 1.0) / (0.5 + 1) = 0.9667
    space = _Space(
        np.array([[1.0], [3.0], [5.0]]),
        np.array([[0.7, 0.3], [1.0, 0.0], [0.5, 0.5]]),
        np.array([[0.5, 0.5], [1.0, 1.0], [0.0, 0.0]]),
    )
    fit = _profiles(space, np.array([0, 0, 0]), 1, population, None)
    assert fit.mix_centroids[0].tolist() == pytest.approx([1.45 / 1.5, 0.05 / 1.5])
    assert fit.rate_centroids[0, 0] == pytest.approx(3.0)


def test_mix_pivot_gives_shares_weights_and_events():
    features = pd.DataFrame({"user_id": ["a", "b", "c"], "active_days_total": [3, 1, 1]})
    mix = pd.DataFrame(
        [
            ("a", "action", "page_viewed", 0.8, 0.5, 3, 1.0),
            ("a", "action", "feature_used", 0.2, 0.5, 3, 1.0),
            ("b", "action", "page_viewed", 0.5, 0.5, 0, 1.0),
            ("b", "action", "feature_used", 0.5, 0.5, 0, 1.0),
            ("a", "device", "mobile", 1.0, 1.0, 3, 0.5),
        ],
        columns=["user_id", "dimension", "category", "shrunk_share", "population_share", "dimension_events",
                 "prior_events"],
    )  # fmt: skip
    frame, population = with_mix(features, mix)
    page, device = mix_column("action", "page_viewed"), mix_column("device", "mobile")
    assert frame[page].tolist() == [0.8, 0.5, 0.5]  # c, unknown to the mix, sits at the population's share
    assert frame[weight_column("action")].tolist() == pytest.approx([0.75, 0.0, 0.0])  # 3 / (3 + 1)
    assert frame[weight_column("device")].tolist() == pytest.approx([3 / 3.5, 0.0, 0.0])
    assert frame[MIX_EVENTS].tolist() == [3, 0, 0]
    assert population.to_dict() == {mix_column("action", "feature_used"): 0.5, page: 0.5, device: 1.0}


def test_selection_keeps_the_better_start_at_each_k_then_the_highest_calinski_harabasz():
    scores = pd.DataFrame(
        {
            "algorithm": ["kmeans", "gaussian_mixture", "kmeans", "gaussian_mixture", "kmeans", "gaussian_mixture"],
            "k": [3, 3, 5, 5, 6, 6],
            "within_distance": [1642.0, 1647.0, 1344.6, 1344.7, 1262.0, 1262.0],
            "calinski_harabasz": [8203.0, 8666.0, 8307.0, 8305.0, 7862.0, 7862.0],
            "confidence": [0.32, 0.33, 0.37, 0.37, 0.36, 0.38],
        }
    )
    # the mixture's k = 3 has the highest index but fits worse than K-Means at k = 3 (measured at 10M events: its
    # clusters merge personas); among the better start of each k, k = 5 has the highest index
    chosen = select(scores)
    assert (chosen["algorithm"], chosen["k"]) == ("kmeans", 5)
    # equal fits at one k: the first start listed; equal indexes across k: the higher mean confidence
    assert select(scores[scores["k"] == 6])["algorithm"] == "kmeans"
    tie = scores[scores["k"].isin([5, 6])].assign(calinski_harabasz=100.0)
    assert select(tie)["k"] == 5  # 0.37 (K-Means at 5) against 0.36 (K-Means at 6)


def test_agreement_with_planted_personas_by_band_of_history():
    assignments = pd.DataFrame({"user_id": list("abcdef"), "cluster_id": [1, 1, 2, 2, 1, 2]})
    features = pd.DataFrame({"user_id": list("abcdef"), "active_days_total": [1, 1, 3, 3, 9, 9]})
    planted = pd.DataFrame({"user_id": list("abcdef"), "persona": ["x", "y", "z", "z", "p", "q"]})
    agreement = planted_agreement(assignments, features, planted)
    assert agreement["users_planted_1_day"] == 2 and agreement["users_planted_8_plus_days"] == 2
    assert agreement["ari_planted_2_7_days"] == 1.0  # one persona, one cluster
    assert agreement["ari_planted_8_plus_days"] == 1.0  # two personas, two clusters
    assert agreement["ari_planted_1_day"] == 0.0  # two personas in one cluster: no better than chance
    assert agreement["users_planted_all"] == 6


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


def test_importance_is_estimated_on_a_bounded_random_sample_of_the_holdout():
    # no more rows than the bound, or no bound: every row, in order
    assert importance_sample(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    assert importance_sample(5, 0, 0).tolist() == [0, 1, 2, 3, 4]
    drawn = importance_sample(1000, 100, 0)
    assert len(drawn) == len(set(drawn.tolist())) == 100
    assert drawn.tolist() == sorted(drawn.tolist()) and drawn.min() >= 0 and drawn.max() < 1000
    # the same draw for the same seed (a retraining on the same data gives the same importances), another otherwise
    assert drawn.tolist() == importance_sample(1000, 100, 0).tolist()
    assert drawn.tolist() != importance_sample(1000, 100, 1).tolist()
    # spread over the holdout, not its head
    assert drawn.max() > 900 and drawn.min() < 100


def test_frame_hash_ignores_row_and_column_order_but_not_values():
    frame = pd.DataFrame({"user_id": ["a", "b"], "x": [1.0, 2.0]})
    shuffled = frame.iloc[::-1][["x", "user_id"]]
    assert frame_hash(frame) == frame_hash(shuffled)
    assert frame_hash(frame) != frame_hash(frame.assign(x=[1.0, 2.5]))


def test_matched_clusters_keep_the_champions_names():
    computed = {1: "shoppers", 2: "power users", 7: "power users (new)"}
    previous = {1: "discount seekers", 2: "power users", 3: "casual browsers"}
    # 1 and 2 matched the champion's clusters 1 and 2; 7 is new and its name is free
    assert keep_previous_names(computed, previous, {1, 2}) == {
        1: "discount seekers",
        2: "power users",
        7: "power users (new)",
    }
    # a new cluster whose computed name a matched one keeps is named after its id
    assert keep_previous_names({1: "shoppers", 4: "discount seekers"}, previous, {1})[4] == "segment 4"


def test_candidates_fitted_on_a_sample_find_the_same_clusters_and_the_chosen_one_is_refined_on_everyone():
    """2,000 users of 4 planted personas: fitting the candidates on 500 of the 1,571 training users picks the same
    k and, once refined on all of them, assigns every user as the fit on all of them does."""
    from sklearn.metrics import adjusted_rand_score

    from tests.ml_helpers import synthetic_cluster_inputs

    features, population, persona = synthetic_cluster_inputs(users=2000, personas=4, seed=3)
    everyone = train_clustering(features, population, ClusterParams(k_min=2, k_max=6, fit_users=0))
    sampled = train_clustering(features, population, ClusterParams(k_min=2, k_max=6, fit_users=500))

    assert everyone.k == sampled.k == 4
    assert len(sampled.training_frame) == len(everyone.training_frame) == 1571  # the hashed holdout keeps the rest
    both = everyone.assignments.merge(sampled.assignments, on="user_id")
    assert adjusted_rand_score(both["cluster_id_x"], both["cluster_id_y"]) == 1.0
    assert adjusted_rand_score(persona, sampled.assignments["cluster_id"]) > 0.95
