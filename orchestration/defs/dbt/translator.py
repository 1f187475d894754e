"""How dbt nodes become Dagster assets: keyed by schema and name, grouped by layer, tagged with their tier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from orchestration.tiers import LIVE, TIER_TAG, tier


def layer_of(dbt_resource_props: Mapping[str, Any]) -> str:
    """The model's folder under models/ (staging, intermediate, marts); sources belong to raw, seeds to seeds."""
    if dbt_resource_props["resource_type"] == "source":
        return dbt_resource_props["source_name"]
    if dbt_resource_props["resource_type"] == "seed":
        return "seeds"
    fqn = dbt_resource_props["fqn"]
    return fqn[1] if len(fqn) > 2 else "default"


class WarehouseTranslator(DagsterDbtTranslator):
    """Models keep their table's address as asset key (marts/cohort_retention) so the UI and SQL agree, and
    their refresh tier (dbt meta `refresh_tier`) as the asset tag of that name.

    Sources keep dagster-dbt's default key (raw/events), which is the key of the ingestion asset that
    writes them, so the graph runs in one piece from landing file to mart.
    """

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        config = props.get("config", {})
        schema = config.get("schema") or props["schema"]
        tags = {**spec.tags, **tier(config.get("meta", {}).get(TIER_TAG, LIVE))}
        return spec.replace_attributes(key=dg.AssetKey([schema, props["name"]]), group_name=layer_of(props), tags=tags)
