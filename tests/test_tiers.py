"""Refresh tiers: every asset declares one, and the jobs and dbt invocations are what the tiers say."""

import dagster as dg
import pytest

from orchestration.tiers import FOLLOW_UP, LIVE, PUBLISH, SLOW, TIER_TAG, TIERS, dbt_select, tier


@pytest.fixture
def defs(data_dir) -> dg.Definitions:
    from orchestration.definitions import defs as load_defs

    return load_defs()


def tiers_of(defs: dg.Definitions) -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).tags.get(TIER_TAG) for key in graph.get_all_asset_keys()}


def test_every_asset_has_one_known_tier(defs):
    tiers = tiers_of(defs)
    assert set(tiers.values()) == set(TIERS)
    assert tiers["serving/serving_copy"] == PUBLISH and list(tiers.values()).count(PUBLISH) == 1
    assert tiers["ml/cluster_model"] == SLOW and tiers["marts/ml_churn_snapshots"] == SLOW
    assert tiers["marts/experiment_results"] == FOLLOW_UP and tiers["marts/daily_kpis"] == LIVE


def test_the_refresh_jobs_are_their_tiers_and_the_live_tier_reads_nothing_later(defs):
    tiers = tiers_of(defs)
    for job, wanted in (("landing_refresh", {LIVE, PUBLISH}), ("refresh_follow_up", {FOLLOW_UP, PUBLISH})):
        keys = {key.to_user_string() for key in defs.resolve_job_def(job).asset_layer.executable_asset_keys}
        assert keys == {name for name, name_tier in tiers.items() if name_tier in wanted}, job
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if tiers[key.to_user_string()] == LIVE:
            parents = {tiers.get(parent.to_user_string()) for parent in graph.get(key).parent_keys}
            assert parents <= {LIVE, None}, key  # a live asset never waits for the follow-up or slow tiers


def test_tier_helpers_refuse_unknown_tiers():
    assert tier(FOLLOW_UP) == {"refresh_tier": "follow_up"}
    assert dbt_select(FOLLOW_UP, SLOW) == "config.meta.refresh_tier:follow_up config.meta.refresh_tier:slow"
    with pytest.raises(ValueError, match="unknown refresh tier 'hourly'"):
        tier("hourly")
