"""Chart helpers: pictures come out as PNG, and a chart that cannot be drawn never fails a run."""

from __future__ import annotations

import logging
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from orchestration import charts
from orchestration.defs.dbt.mart_charts import chart_metadata

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cells() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cohort_start": [date(2026, 1, 5)] * 3 + [date(2026, 1, 12)] * 2,
            "period_number": [0, 1, 2, 0, 1],
            "retention_rate": [1.0, 0.5, 0.25, 1.0, 0.0],
            "is_complete": [True, True, False, True, False],
        }
    )


def test_each_chart_is_a_png():
    lifecycle = pd.DataFrame({"period_start": [date(2026, 1, 5)] * 2, "status": ["new", "dormant"], "users": [3, 1]})
    kpis = pd.DataFrame(
        {"activity_date": pd.date_range("2026-01-01", periods=3), "dau": [1, 2, 3], "wau": [1, 3, 4],
         "mau": [1, 3, 5], "stickiness": [1.0, 0.67, 0.6]}
    )  # fmt: skip
    average = pd.DataFrame({"period_number": [0, 1], "retention_rate": [1.0, 0.4]})
    for png in (
        charts.retention_heatmap(cells(), "t"),
        charts.retention_curves(cells(), average, "t"),
        charts.lifecycle_bars(lifecycle, "t"),
        charts.kpi_trend(kpis, "t"),
    ):
        assert png.startswith(PNG_MAGIC) and len(png) > 2000
    assert charts.to_markdown_image(b"\x89PNG", "x") == "![x](data:image/png;base64,iVBORw==)"


def test_a_missing_mart_gives_no_chart_and_a_warning(tmp_path, caplog):
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    log = logging.getLogger("charts-test")
    with caplog.at_level(logging.WARNING, logger="charts-test"):
        assert chart_metadata(dg.AssetKey(["marts", "lifecycle"]), path, log) == {}
    assert "No chart for marts/lifecycle" in caplog.text
    assert chart_metadata(dg.AssetKey(["marts", "not_charted"]), path, log) == {}
