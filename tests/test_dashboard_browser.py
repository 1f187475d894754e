"""The dashboard served by `streamlit run` and opened page by page in headless Chromium (Debian's chromium and
chromium-driver; nothing is downloaded). Skipped, saying how to enable it, where they are not installed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from dashboard import browser
from tests.dashboard_warehouse import build_and_publish
from tests.redis_server import redis_server
from tests.test_live_segment_sizes import consume_live_traffic, now_ms

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def chromium(downloads: Path):
    reason = browser.missing_browser()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    with browser.chromium(downloads=downloads) as driver:
        yield driver


def metric_values(driver: WebDriver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')]


def test_every_page_renders_in_chromium_without_errors_or_empty_charts(chromium, downloads, data_dir, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    from selenium.webdriver.common.by import By

    build_and_publish(data_dir)
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as redis_url:
        # the live path's memberships, made by the real consumer, for the Segments page's live section
        consume_live_traffic(tmp_path / "live", redis_url, "browser", now_ms())
        monkeypatch.setenv("LIVE_REDIS_URL", redis_url)
        monkeypatch.setenv("LIVE_KEY_PREFIX", "browser")
        monkeypatch.setenv("LIVE_DEFINITIONS_FILE", str(tmp_path / "live" / "live.yml"))
        with browser.running_app(data_dir) as url:
            for path, title in browser.PAGES.items():
                report = browser.open_page(chromium, f"{url}/{path}")
                assert report.title == title, report
                assert report.exceptions == [], report
                assert report.dialogs == [], report  # e.g. "Page not found"
                assert report.chart_marks and report.empty_charts == 0, report
                assert report.notes == [], report  # every table is there: no "no data yet" note
                if path == "":
                    assert metric_values(chromium)[0] == "23"  # DAU on the latest day
                if path == "segments":  # the live section: a table and the members chart, drawn
                    headings = [e.text for e in chromium.find_elements(By.CSS_SELECTOR, "h3")]
                    assert "Live segments" in headings, headings
                    assert report.chart_marks[-1] > 0, report
                if path == "churn":  # the at-risk list downloads as CSV: the highest tier, riskiest first
                    chromium.find_element(By.CSS_SELECTOR, '[data-testid="stDownloadButton"] button').click()
                    csv = downloads / "at_risk_users.csv"
                    deadline = time.monotonic() + 20
                    while not csv.exists() and time.monotonic() < deadline:
                        time.sleep(0.2)
                    at_risk = pd.read_csv(csv)
                    assert at_risk["user_id"].tolist() == ["u4", "u5"]
                    assert at_risk["churn_probability"].tolist() == [0.9, 0.7]

            # a run publishes a new copy: the next page load shows it
            build_and_publish(data_dir, dau_offset=100)
            overview = browser.open_page(chromium, url)
            assert metric_values(chromium)[0] == "123", overview

            # the serving copy gone (a fresh machine): pages say how to make it, no traceback
            os.remove(data_dir / "serving.duckdb")
            for path in ("", "churn", "data_health"):
                report = browser.open_page(chromium, f"{url}/{path}")
                assert report.exceptions == [] and report.chart_marks == [], report
                assert any("make demo" in note for note in report.notes), report
