"""Charts attached to the materialisations of the marts that have a natural picture.

They are drawn after dbt has exited: DuckDB lets no other process open the file while dbt writes it. matplotlib
is imported only by the dbt steps that draw (while dbt runs), not with the code location, which every run process
and the code server load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

Frames = Callable[[str], pd.DataFrame]


def _cohort_retention(read: Frames) -> dict[str, dg.MetadataValue]:
    from orchestration import charts

    weekly = read("select cohort_start, period_number, retention_rate, is_complete from marts.cohort_retention "
                  "where grain = 'week'")  # fmt: skip
    return {"weekly_retention_heatmap": _image(charts.retention_heatmap(weekly, "Weekly retention, first_ever"))}


def _retention_curve(read: Frames) -> dict[str, dg.MetadataValue]:
    from orchestration import charts

    weekly = read("select cohort_start, period_number, retention_rate, is_complete from marts.cohort_retention "
                  "where grain = 'week'")  # fmt: skip
    average = read("select period_number, retention_rate from marts.retention_curve where grain = 'week'")
    png = charts.retention_curves(weekly, average, "Weekly retention: cohorts and weighted average")
    return {"weekly_retention_curves": _image(png)}


def _lifecycle(read: Frames) -> dict[str, dg.MetadataValue]:
    from orchestration import charts

    weekly = read("select period_start, status, users from marts.lifecycle where grain = 'week'")
    return {"weekly_lifecycle": _image(charts.lifecycle_bars(weekly, "Weekly lifecycle (dormant below zero)"))}


def _daily_kpis(read: Frames) -> dict[str, dg.MetadataValue]:
    from orchestration import charts

    kpis = read("select activity_date, dau, wau, mau, stickiness from marts.daily_kpis")
    return {"active_users_trend": _image(charts.kpi_trend(kpis, "Daily, weekly and monthly active users"))}


CHARTS: dict[dg.AssetKey, Callable[[Frames], dict[str, dg.MetadataValue]]] = {
    dg.AssetKey(["marts", "cohort_retention"]): _cohort_retention,
    dg.AssetKey(["marts", "retention_curve"]): _retention_curve,
    dg.AssetKey(["marts", "lifecycle"]): _lifecycle,
    dg.AssetKey(["marts", "daily_kpis"]): _daily_kpis,
}


def _image(png: bytes) -> dg.MetadataValue:
    from orchestration import charts

    return dg.MetadataValue.md(charts.to_markdown_image(png, "chart"))


def chart_metadata(
    asset_key: dg.AssetKey, warehouse_path: Path, log: logging.Logger | logging.LoggerAdapter
) -> dict[str, dg.MetadataValue]:
    """The charts of one mart, or nothing (with a warning) when they cannot be drawn: a chart never fails a run."""
    draw = CHARTS.get(asset_key)
    if draw is None:
        return {}
    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as con:
            return draw(lambda sql: con.execute(sql).df())
    except Exception as error:  # a picture is never worth a failed run
        log.warning(f"No chart for {asset_key.to_user_string()}: {error}")
        return {}
