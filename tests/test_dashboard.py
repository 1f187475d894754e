"""The dashboard's pages in Streamlit's AppTest on a tiny published warehouse with hand-picked numbers.

The numbers each test expects are worked out by hand from tests/dashboard_warehouse.py's docstring.
"""

from __future__ import annotations

import re
import socket
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import queries, ui, wording
from dashboard.source import ServingCopy
from ingestion import IngestSettings, ingest_landing
from ingestion.markup import md_escape
from serving import publish
from stores.schema import connect
from tests.collector_server import free_port
from tests.conftest import event, run_dbt, write_lines
from tests.dashboard_warehouse import build_and_publish
from tests.redis_server import redis_server
from tests.test_live_segment_sizes import consume_live_traffic, now_ms

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
TITLES = {
    "overview": "Overview", "retention": "Retention", "lifecycle": "Lifecycle & stickiness", "segments": "Segments",
    "churn": "Churn", "funnels": "Funnels", "paths": "Paths", "experiments": "Experiments",
    "data_health": "Data health",
}  # fmt: skip
VIEWS = list(TITLES)


def open_page(view: str, *, complete: bool = False) -> AppTest:
    """Run the app as a browser would and switch to one page ($DATA_DIR is the test's).

    complete: the serving copy has every table, so the page must show the as_of line, only non-empty charts and
    no "no data yet" note.
    """
    at = AppTest.from_file(str(APP), default_timeout=60)
    # before the first run AppTest finds the page by its file name, which is each page's url_path
    at.switch_page(f"views/{view}.py").run()
    assert at.title[0].value == TITLES[view]
    assert not at.exception, [e.value for e in at.exception]
    if complete:
        line = at.caption[0].value
        assert line.startswith("Data as of **2026-01-20 12:00 UTC** · last published **"), (view, line)
        assert not notes(at), (view, notes(at))
        rows = chart_rows(at)
        assert rows and all(n > 0 for n in rows), (view, rows)
    return at


def notes(at: AppTest) -> list[str]:
    """The page's st.info notes but the live path's (no Redis runs for most tests)."""
    return [str(e.value) for e in at.info if not str(e.value).startswith(ui.LIVE_NOT_RUNNING)]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements: list) -> str:
    return "\n".join(str(e.value) for e in elements)


def chart_rows(at: AppTest) -> list[int]:
    """Rows of data behind each Altair chart on the page (summed over its datasets)."""
    rows = []
    for chart in at.get("vega_lite_chart"):
        rows.append(sum(pa.ipc.open_stream(ds.data.data).read_all().num_rows for ds in chart.proto.datasets))
    return rows


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page that has all these columns."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


@pytest.fixture(autouse=True)
def no_live_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """No page reads a Redis the machine happens to run: LIVE_REDIS_URL is a port nothing listens on (the tests of
    the live segments start their own)."""
    monkeypatch.setenv("LIVE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")


@pytest.fixture
def published(data_dir: Path) -> Path:
    build_and_publish(data_dir)
    return data_dir


def test_before_the_first_run_every_page_says_how_to_make_the_data(data_dir):
    for view in VIEWS:
        at = open_page(view)
        assert "No serving copy" in texts(at.warning), view
        notes = texts(at.info)
        assert "make demo" in notes and "make run" in notes, view
        assert not at.get("vega_lite_chart"), view


def test_a_missing_or_empty_table_is_named_with_how_to_make_it(data_dir):
    build_and_publish(data_dir, without=("marts.experiment_results", "marts.cluster_profiles", "ml.model_metrics"))
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("delete from ml.churn_scores")
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        publish(con, data_dir / "serving.duckdb", data_dir / "exports")

    experiments = texts(open_page("experiments").info)
    assert "`marts.experiment_results` is not in the serving copy" in experiments and "make run" in experiments
    churn = texts(open_page("churn").info)
    assert "`ml.churn_scores` is empty" in churn and "enough history to train" in churn
    segments = open_page("segments")
    assert "RFM segments" in texts(segments.subheader)  # the rest of the page still shows
    # users are clustered but the profiles mart is missing: sizes from ml.user_clusters, and what will come
    assert "Profiles appear once `marts.cluster_profiles` is published" in texts(segments.caption)
    sizes = frame(segments, "cluster_name", "model_version")
    assert dict(zip(sizes["cluster_name"], sizes["users"], strict=True)) == {"casual": 4, "power users": 2}


def test_overview_filters_change_the_numbers(published):
    at = open_page("overview", complete=True)
    # default range: all 14 days; the latest is 2026-01-18 (i = 13)
    assert metrics(at) == {
        "DAU": "23", "MAU": "43", "Stickiness (DAU/MAU)": "53.5%", "New users": "2", "Revenue": "130",
        "Conversion": "4.3%",
    }  # fmt: skip
    assert [m.delta for m in at.metric][:2] == ["1", "1"]
    assert "revenue on 2026-01-10 was 50, below its usual range (80 to 160, expected 120)" in texts(at.warning)
    numbers = frame(at, "period_start", "dau")
    with duckdb.connect(str(published / "serving.duckdb"), read_only=True) as con:
        mart = con.execute("select dau, revenue::double from marts.daily_kpis order by activity_date").fetchall()
    assert list(zip(numbers["dau"], numbers["revenue"], strict=True)) == mart

    # weekly: the week of 2026-01-12 holds i = 7..13: average DAU 20, WAU/MAU of its last day, revenue 10*(7+..+13)
    at.button_group(key="overview_grain").set_value("week").run()
    shown = metrics(at)
    assert (
        shown["Avg DAU"] == "20" and shown["MAU"] == "43" and shown["Revenue"] == "700" and shown["New users"] == "14"
    )
    assert at.metric[0].delta == "7"  # against the week before: average DAU 13

    # a shorter range: days 2026-01-05..07, by day; the alert on the 10th is outside it
    at.button_group(key="overview_grain").set_value("day")
    at.date_input(key="overview_dates").set_value((date(2026, 1, 5), date(2026, 1, 7))).run()
    assert metrics(at)["DAU"] == "12" and metrics(at)["Revenue"] == "20"
    assert not at.warning
    assert len(frame(at, "period_start", "dau")) == 3


def test_retention_heatmap_curves_modes_and_breakdown(published):
    at = open_page("retention", complete=True)
    shown = metrics(at)
    assert shown["Cohorts"] == "3" and shown["Users in these cohorts"] == "35"
    # weighted over complete cells only: only cohort 2026-01-05 has completed week 1 (6 of 10)
    assert shown["Average retention, week 1"] == "60.0%"
    heatmap = at.dataframe[0].value
    partial = heatmap[(heatmap["cohort_start"] == pd.Timestamp("2026-01-12")) & (heatmap["period_number"] == 1)]
    assert partial[["retained_users", "is_complete"]].values.tolist() == [[8, False]]  # kept, not zero
    average = at.dataframe[1].value
    with duckdb.connect(str(published / "serving.duckdb"), read_only=True) as con:
        curve = con.execute(
            "select period_number, users_completed, retention_rate from marts.retention_curve where grain = 'week' "
            "order by 1"
        ).fetchall()
    assert list(zip(average["period_number"], average["users_completed"], average["retention_rate"], strict=True)) == (
        curve
    )

    at.radio(key="retention_mode").set_value("unbounded").run()
    assert metrics(at)["Average retention, week 1"] == "70.0%"  # 7 of 10 active in week 1 or later

    at.radio(key="retention_mode").set_value("classic")
    at.selectbox(key="retention_breakdown").set_value("plan").run()
    at.multiselect(key="retention_values_plan").set_value(["pro"]).run()
    assert metrics(at)["Average retention, week 1"] == "50.0%"  # pro: 2 of 4
    assert metrics(at)["Users in these cohorts"] == "9"
    by_plan = at.dataframe[-1].value
    assert by_plan[by_plan["period_number"] == 1]["retention_rate"].tolist() == [0.5]

    at.select_slider(key="retention_cohorts_week").set_value((date(2026, 1, 12), date(2026, 1, 19))).run()
    assert metrics(at)["Average retention, week 1"] == "n/a"  # no pro cohort in range has finished week 1


def test_lifecycle_and_stickiness(published):
    at = open_page("lifecycle", complete=True)
    shown = metrics(at)
    assert shown["New, latest week"] == "5" and shown["Dormant, latest week"] == "18"
    assert shown["Quick ratio"] == "0.33"  # (5 + 1) / 18
    lifecycle = at.dataframe[0].value
    assert lifecycle.set_index("period_start").loc[pd.Timestamp("2026-01-12"), "dormant"] == 4
    # stickiness: the latest complete week (2026-01-12): 26 users, 57 active days
    assert shown["Active users in the week"] == "26" and shown["Average active days"] == "2.19"
    assert shown["Active 4+ days"] == "15.4%"
    at.selectbox(key="stickiness_period_week").set_value(date(2026, 1, 19)).run()
    assert metrics(at)["Active users in the week"] == "14"
    assert "has not ended at as_of" in texts(at.caption)


def test_segments_filters(published):
    at = open_page("segments", complete=True)
    segments = at.dataframe[0].value.set_index("segment")
    assert segments["users"].to_dict() == {"champions": 2, "loyal": 2, "hibernating": 1, "lost": 1}
    bands = at.dataframe[-1].value
    assert bands["users"].tolist() == [2, 1, 1, 1, 1]  # scores 0, 0 | 5 | 12 | 60 | 200
    clusters = frame(at, "cluster_name")
    assert clusters["cluster_name"].tolist() == ["casual", "power users"]
    sizes = frame(at, "cluster_name", "mean_confidence").set_index("cluster_name")
    assert sizes["users"].to_dict() == {"casual": 4, "power users": 2}
    assert sizes["mean_confidence"].to_dict() == pytest.approx({"casual": 0.3, "power users": 0.8})
    # every user has a cluster; those resting on too little data can be left out
    at.toggle(key="segments_hide_low_data").set_value(True).run()
    sizes = frame(at, "cluster_name", "mean_confidence").set_index("cluster_name")
    assert sizes["users"].to_dict() == {"casual": 2, "power users": 2}
    at.toggle(key="segments_hide_low_data").set_value(False).run()

    at.multiselect(key="segments_stages").set_value(["lapsed"]).run()
    assert at.dataframe[0].value.set_index("segment")["users"].to_dict() == {"hibernating": 1, "lost": 1}
    assert at.dataframe[-1].value["users"].tolist() == [2, 0, 0, 0, 0]

    at.multiselect(key="segments_stages").set_value(["active", "new"])
    at.toggle(key="segments_high_frequency").set_value(True).run()
    assert at.dataframe[0].value["users"].tolist() == [1]  # u1


def test_segments_page_shows_the_live_segments_from_redis(published, tmp_path, monkeypatch):
    now = now_ms()
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as url:
        # the real consumer's memberships and transitions (tests/test_live_segment_sizes.py has the hand count)
        consume_live_traffic(tmp_path / "live", url, "dash", now)
        monkeypatch.setenv("LIVE_REDIS_URL", url)
        monkeypatch.setenv("LIVE_KEY_PREFIX", "dash")
        monkeypatch.setenv("LIVE_DEFINITIONS_FILE", str(tmp_path / "live" / "live.yml"))
        at = open_page("segments", complete=True)
    assert "Live segments" in texts(at.subheader).splitlines()
    live = frame(at, "members now").set_index("segment")
    assert live.drop(columns="description").to_dict("index") == {
        "adding": {"members now": 1, "entered (1 h)": 2, "exited (1 h)": 1, "entered (24 h)": 3, "exited (24 h)": 2},
        "browsing": {"members now": 1, "entered (1 h)": 1, "exited (1 h)": 1, "entered (24 h)": 2, "exited (24 h)": 1},
        "ordering": {"members now": 0, "entered (1 h)": 0, "exited (1 h)": 0, "entered (24 h)": 0, "exited (24 h)": 0},
    }  # fmt: skip
    assert live.loc["adding", "description"] == "added a product in the last 10 minutes"
    caption = texts(at.caption)
    assert "**Live**: read from Redis at" in caption and "seconds old, unlike the rest of this page" in caption
    assert "6 events applied by the live consumer" in caption
    assert chart_rows(at)[-1] == 3  # the members bar chart: one bar per live segment


def test_segments_page_says_the_live_path_is_not_running_when_no_redis_answers(published, monkeypatch):
    # a closed port (with a password in the URL, which the page must not show), then a port that accepts and never
    # answers
    monkeypatch.setenv("LIVE_REDIS_URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    at = open_page("segments", complete=True)  # the rest of the page shows in full
    live_notes = [str(e.value) for e in at.info if str(e.value).startswith(ui.LIVE_NOT_RUNNING)]
    assert len(live_notes) == 1 and "`make dev`" in live_notes[0] and "127.0.0.1:" in live_notes[0], live_notes
    assert "Live segments" in texts(at.subheader)
    assert not at.error and not at.warning and not at.exception
    shown = texts(at.info) + texts(at.caption) + texts(at.markdown)
    assert "hunter2" not in shown
    assert not any("members now" in element.value.columns for element in at.dataframe)

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("LIVE_REDIS_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        at = open_page("segments")
        waited = time.monotonic() - started
    assert any(str(e.value).startswith(ui.LIVE_NOT_RUNNING) for e in at.info) and not at.exception
    assert waited < ui.LIVE_READ_TIMEOUT_SECONDS + 5  # the page, with one read timeout for the live section


def test_churn_tiers_model_and_at_risk_list(published):
    at = open_page("churn", complete=True)
    shown = metrics(at)
    assert shown["Scored users"] == "5"
    assert (shown["low risk"], shown["medium risk"], shown["high risk"]) == ("2", "1", "2")
    assert shown["holdout roc_auc"] == "0.810" and shown["holdout pr_auc"] == "0.600"
    assert "Champion **churn** version **3**" in texts(at.markdown)
    users = frame(at, "user_id", "churn_probability")
    assert users["user_id"].tolist() == ["u4", "u5"]  # the highest tier, riskiest first
    assert at.get("download_button")

    at.slider(key="churn_min_probability").set_value(0.8).run()
    assert frame(at, "user_id", "churn_probability")["user_id"].tolist() == ["u4"]

    at.slider(key="churn_min_probability").set_value(0.0)
    at.multiselect(key="churn_segments").set_value(["loyal"]).run()  # u3 (medium) and u5 (high)
    shown = metrics(at)
    assert shown["Scored users"] == "2" and shown["medium risk"] == "1" and shown["high risk"] == "1"
    assert frame(at, "user_id", "churn_probability")["user_id"].tolist() == ["u5"]


def test_experiments_in_words(published):
    at = open_page("experiments", complete=True)
    # experiment ids are client values, escaped as Markdown
    assert [s.value for s in at.main.subheader][1:] == [r"Experiment checkout\_button", "Experiment onboarding"]
    assert "Traffic split as planned (control 200, green 210" in texts(at.success)
    assert "Traffic split is off from the plan" in texts(at.error)
    # the decision marts: checkout_button's from its metric sums, none for onboarding (no metrics)
    # (md_escape writes the reason's colon as \\:, which Markdown shows as a colon)
    keep_running = r"**Decision: Keep running.** Not enough users yet\: detecting a 10% lift on conversion needs"
    assert keep_running in texts(at.warning)
    assert "No decision: this experiment has no metrics in the experiment_metrics seed." in texts(at.warning)
    conversion = "**conversion** (primary, green): +100.0% (95% interval +0.6% to +199.4%; always-valid"
    lines = texts(at.markdown).split("\n")
    assert any(line.startswith(conversion) and "after the Holm correction" in line for line in lines)
    assert "**refunds** (guardrail, green): +4.8% (95% interval -82.8% to +92.4%; always-valid" in texts(at.markdown)
    assert any(line.endswith("Guardrail not yet known.") for line in lines)
    assert r"- ship when every primary metric's corrected always\-valid interval" in texts(at.markdown)
    lines = texts(at.markdown)
    green = "**green** converts at 20.0% against 10.0% for control: +100.0% (95% interval +30.0% to +170.0%)."
    assert f"{green} Better than control." in lines
    assert "The interval includes zero: no clear difference." in lines
    # the unplanned variant is marked in words, not compared, and not the "smallest variant"
    assert "**evil** (unplanned variant, 3 users) converts at 33.3%; not a planned variant" in lines
    warnings = texts(at.warning)
    assert "Unplanned variants: 3 exposed users are in variants the plan does not name (`evil` (3 users))" in warnings
    assert "This experiment is not in the experiments seed" in warnings
    assert "Traffic split is off from the plan (control 40, short 35;" in texts(at.error)  # evil not in the check
    assert len(at.dataframe[0].value) == 2  # the forest plot's numbers: one row per compared variant

    at.multiselect(key="experiments_chosen").set_value(["onboarding"]).run()
    assert [s.value for s in at.main.subheader][1:] == ["Experiment onboarding"]
    assert at.dataframe[0].value["variant"].tolist() == ["short"]


def test_funnels_page(published):
    at = open_page("funnels", complete=True)
    # whole history, everyone: 40 entered, 24 added to the cart, 7 ordered (tests/dashboard_warehouse.py)
    lines = texts(at.markdown)
    assert "Of **40** users who did page\\_viewed, **7** (17.5%) reached order\\_completed" in lines
    assert "within 7 days. Half of them took less than 20 min." in lines
    assert "3 entered too recently for their window to have ended" in lines
    # lost 16 between steps 1 and 2, 17 between 2 and 3 (70.8% of the 24)
    assert "and order\\_completed \\(revenue gte 10\\): 17 users (70.8% of those who got that far)" in lines
    times = frame(at, "median from previous")
    assert times["median from previous"].tolist() == ["10 min", "15 min"]
    assert times["90% took less than"].tolist() == ["2.0 days", "3.0 days"]
    assert "By context\\:device\\.type" in texts(at.subheader)  # the breakdown as written, escaped
    assert "**1** users reached step 1 and not step 2" in lines

    at.selectbox(key="funnel_grain").set_value("week").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(chart_rows(at)) == 3  # the funnel, its breakdown and the cohort trend
    shown = frame(at, "breakdown_value", "conversion_from_first")
    everyone = shown[shown["breakdown_value"] == "(all)"].set_index("step_number")
    assert everyone["users"].tolist() == [40, 24, 7]
    assert everyone["conversion_from_previous"].tolist() == pytest.approx([1.0, 24 / 40, 7 / 24])
    at.selectbox(key="funnel_dropped_after").set_value(2).run()
    assert "**1** users reached step 2 and not step 3" in texts(at.markdown)


def test_funnel_steps_sum_cohorts_and_recompute_rates(published):
    db = ServingCopy(published / "serving.duckdb")
    second_week = queries.funnel_steps(db, "checkout", "week", date(2026, 1, 12), date(2026, 1, 12))
    desktop = second_week[second_week["breakdown_value"] == "desktop"]
    assert desktop["users"].tolist() == [0, 0, 0] and desktop["conversion_from_first"].isna().all()
    both = queries.funnel_steps(db, "checkout", "week", date(2026, 1, 5), date(2026, 1, 12))
    mobile = both[both["breakdown_value"] == "mobile"]
    assert mobile["users"].tolist() == [30, 16, 5]
    assert mobile["conversion_from_first"].tolist() == pytest.approx([1.0, 16 / 30, 5 / 30])
    assert not mobile["is_complete"].any()  # the second week's windows are open
    assert queries.funnel_dropoffs(db, "checkout", 2)["user_id"].tolist() == ["u3"]


def test_durations_in_words():
    assert [wording.duration(s) for s in (45, 600, 7200, 3 * 86400, None)] == [
        "45 s", "10 min", "2.0 h", "3.0 days", "n/a"
    ]  # fmt: skip


def test_paths_page(published):
    at = open_page("paths", complete=True)
    assert "**4** users did `signed_up`" in texts(at.markdown)
    matrix = frame(at, 0, 1, 2)
    assert matrix.loc["feature_used", 1] == pytest.approx(0.5) and matrix.loc["(end)", 2] == pytest.approx(0.5)
    assert frame(at, "sequence")["sequence"].tolist() == ["signed_up > feature_used > page_viewed"]
    flows = frame(at, "from_node", "to_node")
    assert int(flows[(flows["from_node"] == "signed_up") & (flows["to_node"] == "feature_used")]["users"].iloc[0]) == 2


def test_data_health_files_rejects_and_gate(published):
    at = open_page("data_health", complete=True)
    # the gate's detail can name client files: escaped as Markdown
    assert r"is **quarantined**: volume\: 49 rows loaded is 0\.01x the trailing average" in texts(at.error)
    shown = metrics(at)
    assert (shown["Files"], shown["Rows in"], shown["Loaded"], shown["Rejected"]) == ("2", "150", "144", "4")
    rejects = frame(at, "sample_line")
    assert rejects[["source_file", "reason", "rejected_rows", "first_line_number"]].values.tolist() == [
        ["a.jsonl", "missing message_id", 2, 3],
        ["a.jsonl", "unknown type: click", 1, 9],
        ["b.csv", "unparseable timestamp: yesterday", 1, 2],
    ]
    assert rejects["sample_line"].iloc[0] == '{"user_id": "u2"}'  # the first rejected line of that reason

    at.multiselect(key="health_files").set_value(["b.csv"]).run()
    assert frame(at, "sample_line")["rejected_rows"].tolist() == [1]


def test_data_health_shows_the_flagged_client_values(published):
    at = open_page("data_health", complete=True)
    assert "Flagged: unplanned experiment 1; unplanned variant 1." in texts(at.warning)
    flags = frame(at, "flag", "flagged", "example")
    assert flags[["flag", "flagged", "users"]].values.tolist() == [
        ["unplanned_experiment", 1, 78],
        ["unplanned_variant", 1, 3],
        ["revenue_unreadable", 0, 0],
    ]
    assert flags["example"].iloc[:2].tolist() == ["onboarding", "onboarding: evil"] and pd.isna(flags["example"][2])
    db = ServingCopy(published / "serving.duckdb")
    assert queries.data_health_flags(db)["flag"].tolist() == flags["flag"].tolist()


def test_a_republish_shows_on_the_next_page_load(published):
    assert metrics(open_page("overview"))["DAU"] == "23"
    # the page holds no connection: opening the file for writing in this process would fail if it did
    with duckdb.connect(str(published / "serving.duckdb")) as writer:
        writer.execute("select 1")
    build_and_publish(published, dau_offset=100)  # a run publishes a new copy
    assert metrics(open_page("overview"))["DAU"] == "123"


def test_queries_read_only_and_close_the_file(published):
    db = ServingCopy(published / "serving.duckdb")
    weekly = queries.kpi_trend(db, date(2026, 1, 5), date(2026, 1, 18), "week")
    assert weekly["dau"].tolist() == [13.0, 20.0] and weekly["revenue"].tolist() == [210.0, 700.0]
    # no connection is left open: a writer can open the file right after
    with duckdb.connect(str(published / "serving.duckdb")) as writer:
        writer.execute("select 1")
    with pytest.raises(ValueError, match="grain must be one of day, week, month, not 'year'"):
        queries.kpi_trend(db, date(2026, 1, 5), date(2026, 1, 18), "year")
    with pytest.raises(duckdb.Error, match="read-only"):
        db.query("create table marts.x as select 1")


def day(n: int, time: str = "10:00:00") -> str:
    return f"2026-01-{n:02d}T{time}Z"


# Four users over three weeks (Monday 01-05 starts W0): u1 orders in W0 and comes back in W1; u2 is active in W0
# only; u3 starts in W1 and returns in W2; u4 starts on the last day (as_of = 2026-01-21 10:00).
PIPELINE_EVENTS = [
    event("p01", "u1", timestamp=day(5), event="Order Completed", properties={"revenue": 30}),
    event("p02", "u2", timestamp=day(6)),
    event("p03", "u2", timestamp=day(7)),
    event("p04", "u1", timestamp=day(13)),
    event("p05", "u3", timestamp=day(14), context={"campaign": {"source": "g", "medium": "cpc", "name": "x"}}),
    event("p06", "u3", timestamp=day(20), event="Order Completed", properties={"revenue": 12.5}),
    event("p07", "u4", timestamp=day(21)),
]


@pytest.mark.slow
def test_pages_show_what_the_real_pipelines_marts_hold(data_dir):
    """Events -> ingestion -> dbt (seeds and models) -> publish -> pages: the numbers shown equal the marts'."""
    write_lines(data_dir / "landing" / "events.jsonl", [{**e, "received_at": e["timestamp"]} for e in PIPELINE_EVENTS])
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "build", "--exclude-resource-type", "test")
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        publish(con, data_dir / "serving.duckdb", data_dir / "exports")
    serving = duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True)
    try:
        latest = serving.execute(
            "select dau, mau, new_users, revenue from marts.daily_kpis order by activity_date desc limit 1"
        ).fetchone()
        curve = serving.execute(
            "select retention_rate from marts.retention_curve where grain = 'week' and period_number = 1"
        ).fetchone()
        lifecycle = dict(
            serving.execute(
                "select status, users from marts.lifecycle where grain = 'week' and period_start = "
                "(select max(period_start) from marts.lifecycle where grain = 'week')"
            ).fetchall()
        )
        segments = dict(serving.execute("select rfm_segment, count(*) from marts.user_segments group by 1").fetchall())
        files = serving.execute("select count(*), sum(rows_loaded) from ops.load_manifest").fetchone()
    finally:
        serving.close()

    overview = metrics(open_page("overview"))
    assert latest[:3] == (1, 4, 1)  # 01-21: u4 alone, new; all four within 30 days
    assert (overview["DAU"], overview["MAU"], overview["New users"]) == tuple(str(v) for v in latest[:3])
    assert overview["Revenue"] == f"{float(latest[3]):,.0f}"
    retention = open_page("retention")
    assert curve == (0.5,)  # only the W0 cohort (u1, u2) has finished its week 1, and u1 came back in it
    assert metrics(retention)["Average retention, week 1"] == f"{curve[0]:.1%}"
    shown = metrics(open_page("lifecycle"))
    assert {s: int(shown[f"{s.capitalize()}, latest week"]) for s in queries.LIFECYCLE_STATUSES} == {
        s: lifecycle.get(s, 0) for s in queries.LIFECYCLE_STATUSES
    }
    rfm = open_page("segments").dataframe[0].value.set_index("segment")["users"].to_dict()
    assert rfm == segments and sum(rfm.values()) == 4
    health = metrics(open_page("data_health"))
    assert (health["Files"], health["Loaded"]) == ("1", "7") == (str(files[0]), str(files[1]))


def test_the_marts_own_srm_verdict_and_planned_split_are_used_when_present():
    rows = pd.DataFrame(
        {
            "variant": ["control", "b"], "users": [300, 100], "srm_p_value": [0.0004, 0.0004],
            "has_sample_ratio_mismatch": [False, False], "planned_share": [0.75, 0.25],
        }
    )  # fmt: skip
    ok, sentence = wording.srm_sentence(rows)  # planned 75/25: the mart says the split is fine, whatever p says
    assert ok and sentence == "Traffic split as planned (control 300, b 100; planned 75%/25%; check p = 0.0004)."
    ok, sentence = wording.srm_sentence(rows.assign(has_sample_ratio_mismatch=True, srm_p_value=0.2))
    assert not ok and sentence.startswith("Traffic split is off from the plan (control 300, b 100; planned 75%/25%;")


HOSTILE_VARIANT = "**evil**<img src=x onerror=alert(1)>"
HOSTILE_SHORT = "short_[x](javascript:alert(1))"
HOSTILE_EXPERIMENT = "onboard|ing\n\n# <b>big</b> :red[x]"
HOSTILE_PLAN = "pro](javascript:alert(1))"
HOSTILE_DETAIL = "a|b](javascript:alert(1)).jsonl: lacks required column(s): timestamp\n| forged | row |"
MARKDOWN_ELEMENTS = ("markdown", "caption", "subheader", "success", "error", "warning", "info")


@pytest.fixture
def hostile(data_dir: Path) -> Path:
    """The tiny warehouse with client-sent names made hostile: a variant with markup, a compared variant with a
    link, an experiment id with a table pipe, blank line and heading, a plan value with a link, a gate detail
    naming a hostile file."""
    warehouse = data_dir / "warehouse.duckdb"
    build_and_publish(data_dir)
    with connect(str(warehouse)) as con:
        for table in ("marts.experiment_results",):
            con.execute(f"update {table} set variant = ? where variant = 'evil'", [HOSTILE_VARIANT])
            con.execute(f"update {table} set variant = ? where variant = 'short'", [HOSTILE_SHORT])
            con.execute(
                f"update {table} set experiment_id = ? where experiment_id = 'onboarding'", [HOSTILE_EXPERIMENT]
            )
        # a compared variant of the metric results with a link, in its rows and the decision's reason
        con.execute(
            "update marts.experiment_metric_results set variant = ?, decision_reason = "
            "replace(decision_reason, 'green', ?) where variant = 'green'",
            [HOSTILE_SHORT, HOSTILE_SHORT],
        )
        con.execute("update marts.experiment_decisions set decision_reason = replace(decision_reason, 'green', ?)",
                    [HOSTILE_SHORT])  # fmt: skip
        for table in ("marts.cohort_retention_by_dimension", "marts.retention_curve_cells_by_dimension"):
            con.execute(f"update {table} set dimension_value = ? where dimension_value = 'pro'", [HOSTILE_PLAN])
        con.execute("update raw.batches set gate_detail = ? where batch_id = 'batch2'", [HOSTILE_DETAIL])
        publish(con, data_dir / "serving.duckdb", data_dir / "exports")
    return data_dir


def markdown_texts(at: AppTest) -> list[str]:
    """The Markdown source of every element Streamlit renders as Markdown."""
    values = [str(e.value) for kind in MARKDOWN_ELEMENTS for e in at.get(kind)]
    return values + [e.label for e in at.get("expander")]


def assert_no_markup(at: AppTest, *hostile: str) -> None:
    for text in markdown_texts(at):
        for value in hostile:
            assert value not in text, (value, text)
        outside_code = text.replace(f"`{HOSTILE_VARIANT}`", "")
        # no link can open and no tag start: every '[', ']', '(', '<' of a client value is escaped
        assert not re.search(r"(?<!\\)\]\(javascript|(?<!\\)<[a-z/]", outside_code), text


def test_hostile_names_show_escaped_on_the_experiments_page(hostile):
    at = open_page("experiments", complete=True)
    escaped_id = md_escape(HOSTILE_EXPERIMENT, wording.NAME_CHARS)
    assert escaped_id == r"onboard\|ing\\n\\n\# \<b\>big\</b\> \:red\[x\]"
    assert [s.value for s in at.main.subheader][1:] == [r"Experiment checkout\_button", f"Experiment {escaped_id}"]
    assert f"{escaped_id}: numbers" in [e.label for e in at.get("expander")]
    lines = texts(at.markdown)
    assert r"**\*\*evil\*\*\<img src=x onerror=alert\(1\)\>** (unplanned variant, 3 users) converts at 33.3%" in lines
    assert r"**short\_\[x\]\(javascript\:alert\(1\)\)** converts at 22.9% against 20.0% for control" in lines
    # the unplanned variant as code: literal in Markdown, no backtick in the name to close it
    assert f"(`{HOSTILE_VARIANT}` (3 users))" in texts(at.warning)
    assert r"**conversion** (primary, short\_\[x\]\(javascript\:alert\(1\)\)): +100.0%" in lines
    assert r"needs 39,459 users in short\_\[x\]\(javascript\:alert\(1\)\) and control" in texts(at.warning)
    assert r"(control 40, short\_\[x\]\(javascript\:alert\(1\)\) 35;" in texts(at.error)
    assert_no_markup(at, HOSTILE_EXPERIMENT, HOSTILE_SHORT)
    # the raw values are still what the tables show
    assert set(frame(at, "experiment_id", "variant")["variant"]) <= {"green", HOSTILE_SHORT}


def test_hostile_detail_and_dimension_value_show_escaped(hostile):
    at = open_page("data_health", complete=True)
    detail = r"a\|b\]\(javascript\:alert\(1\)\)\.jsonl\: lacks required column\(s\)\: timestamp\\n\| forged \| row \|"
    assert f"is **quarantined**: {detail}. Its rows are kept out" in texts(at.error)
    assert_no_markup(at, HOSTILE_DETAIL)

    at = open_page("retention", complete=True)
    at.selectbox(key="retention_breakdown").set_value("plan").run()
    at.multiselect(key="retention_values_plan").set_value([HOSTILE_PLAN]).run()
    assert metrics(at)["Average retention, week 1"] == "50.0%"  # the same users as "pro"
    assert r"Cohort heatmap for plan pro\]\(javascript\:alert\(1\)\)" in [s.value for s in at.main.subheader]
    assert_no_markup(at, HOSTILE_PLAN)


def test_a_metric_sentence_names_the_adjustment_its_estimate_uses():
    row = pd.Series({
        "metric": "conversion", "role": "primary", "variant": "treatment", "estimate": "cupac", "estimate_lift": 0.1,
        "lift": 0.12, "lift_ci_low": -0.3, "lift_ci_high": 0.5, "cuped_ci_low": -0.25, "cuped_ci_high": 0.45,
        "cupac_ci_low": -0.2, "cupac_ci_high": 0.4, "variance_reduction": 0.15, "cupac_variance_reduction": 0.3,
        "sequential_ci_low": -0.5, "sequential_ci_high": 0.7, "adjusted_p_value": 0.4, "correction": "bh",
        "guardrail_status": None,
    })  # fmt: skip
    assert wording.metric_sentence(row) == (
        "**conversion** (primary, treatment): +10.0% (95% interval -20.0% to +40.0%; always-valid -50.0% to +70.0% "
        "(safe to read daily); p = 0.40 after the Benjamini-Hochberg correction). CUPAC (a model of the metric from "
        "what users did before exposure) cut the variance by 30% (raw lift +12.0%)."
    )
    raw = wording.metric_sentence(row.copy().replace({"cupac": "raw"}))
    assert "95% interval -30.0% to +50.0%" in raw and "cut the variance" not in raw
