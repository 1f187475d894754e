"""Refresh tiers: which run builds an asset, declared once on each asset as the tag `refresh_tier`.

dbt models declare it in their `meta` (dbt_project.yml per folder, a model's yml where it differs); the translator
copies it into the asset's tags, and Python assets set it with `tier(...)`. The dbt invocations select models by it
(`dbt_select`) and the jobs select assets by it (`selection`), so moving an asset to another tier is one edit.
"""

from __future__ import annotations

import dagster as dg

TIER_TAG = "refresh_tier"
LIVE = "live"
FOLLOW_UP = "follow_up"
SLOW = "slow"
PUBLISH = "publish"
TIERS = {
    LIVE: "built by every landing_refresh (the live marts, published within a minute of a file landing)",
    FOLLOW_UP: "built by refresh_follow_up, after the refreshes: ML features and scores, whole-history statistics",
    SLOW: "built only by the daily full refresh and ml_training: model training, training snapshots, factorial fits",
    PUBLISH: "the serving copy: the last step of every run, publishing what the run built",
}


def tier(name: str) -> dict[str, str]:
    """The asset tags that put an asset in tier `name`."""
    if name not in TIERS:
        raise ValueError(f"unknown refresh tier {name!r} (one of {', '.join(TIERS)})")
    return {TIER_TAG: name}


def selection(*names: str) -> dg.AssetSelection:
    """Every asset of the tiers `names` (with their checks)."""
    selected = [dg.AssetSelection.tag(TIER_TAG, tier(name)[TIER_TAG]) for name in names]
    union = selected[0]
    for more in selected[1:]:
        union = union | more
    return union


def dbt_select(*names: str) -> str:
    """The dbt selection of the models of the tiers `names` (their `meta.refresh_tier`)."""
    return " ".join(f"config.meta.{TIER_TAG}:{tier(name)[TIER_TAG]}" for name in names)
