"""Reporting time zone across a daylight-saving change, month ends and sessions, on a hand-written log.

dbt runs with reporting_timezone = America/New_York: UTC-5 until 2026-03-08 02:00 local, UTC-4 after.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingestion import IngestSettings, ingest_landing
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow


def ev(message_id: str, user_id: str, timestamp: str, **fields: object) -> dict:
    return event(message_id, user_id, timestamp=timestamp, received_at=timestamp, **fields)


LOG = [
    # a: Sat 03-07 23:30 EST (04:30Z Sunday in UTC), then Sun 03-08 23:30 EDT (03:30Z Monday in UTC)
    ev("a1", "a", "2026-03-08T04:30:00Z"),
    ev("a2", "a", "2026-03-09T03:30:00Z"),
    # a again Mon 03-16 00:30 EDT (04:30Z): NY week 2 after the cohort's week, UTC week 1
    ev("a3", "a", "2026-03-16T04:30:00Z"),
    # b: Tue 03-31 23:00 EDT = 04-01 03:00Z: March in New York, April in UTC; same-day return 10 minutes later
    ev("b1", "b", "2026-04-01T03:00:00Z"),
    ev("b2", "b", "2026-04-01T03:10:00Z"),
    # c: sessions with a 30-minute timeout: 3 events within gaps of 10 and 30 minutes (one session), then a
    # gap of 31 minutes (second session, a bounce)
    ev("c1", "c", "2026-04-02T12:00:00Z", type="page", event=None),
    ev("c2", "c", "2026-04-02T12:10:00Z"),
    ev("c3", "c", "2026-04-02T12:40:00Z"),
    ev("c4", "c", "2026-04-02T13:11:00Z"),
]


@pytest.fixture(scope="module")
def new_york(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("tz") / "data"
    write_lines(data_dir / "landing" / "log.jsonl", LOG)
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "build", dbt_vars={"reporting_timezone": "America/New_York"})
    return data_dir


def test_local_dates_follow_the_offset_on_each_side_of_the_change(new_york):
    dates = dict(query(new_york, "select message_id, event_date from staging.stg_events"))
    assert dates["a1"] == date(2026, 3, 7)  # 04:30Z is 23:30 EST the day before
    assert dates["a2"] == date(2026, 3, 8)  # 03:30Z is 23:30 EDT after the change
    assert dates["b1"] == date(2026, 3, 31)


def test_weeks_and_months_are_cut_in_the_reporting_zone(new_york):
    weekly = query(
        new_york,
        "select cohort_start, period_number, cohort_size, retained_users from marts.cohort_retention "
        "where grain = 'week' and cohort_start = '2026-03-02' order by period_number",
    )
    # a's cohort: the week of Sat 03-07 local; a2 (Sun 03-08) is still period 0; a3 (Mon 03-16) is period 2;
    # dense up to as_of's week (Mon 03-30, period 4)
    assert [row[1:] for row in weekly] == [(0, 1, 1), (1, 1, 0), (2, 1, 1), (3, 1, 0), (4, 1, 0)]
    monthly = query(
        new_york,
        "select cohort_start, cohort_size from marts.cohort_retention where grain = 'month' and period_number = 0 "
        "order by 1",
    )
    assert monthly == [(date(2026, 3, 1), 2), (date(2026, 4, 1), 1)]  # b belongs to March in New York


def test_same_day_return_is_reported_apart_from_the_cohort_size(new_york):
    rows = query(
        new_york,
        "select cohort_start, cohort_size, returned_in_period_0, retained_users from marts.cohort_retention "
        "where grain = 'day' and period_number = 0 order by 1",
    )
    assert rows == [
        (date(2026, 3, 7), 1, 0, 1),  # a: next activity is the next local day
        (date(2026, 3, 31), 1, 1, 1),  # b: back 10 minutes later, same day
        (date(2026, 4, 2), 1, 1, 1),
    ]


def test_sessions_split_on_gaps_over_the_timeout(new_york):
    sessions = query(
        new_york,
        "select session_number, events, page_views, duration_seconds, is_bounce from intermediate.int_sessions "
        "where user_id = 'c' order by 1",
    )
    assert sessions == [(1, 3, 1, 2400, False), (2, 1, 0, 0, True)]
    kpis = query(
        new_york,
        "select sessions, users, bounces, bounce_rate, avg_duration_seconds from marts.session_kpis "
        "where session_date = '2026-04-02'",
    )
    assert kpis == [(2, 1, 1, 0.5, 1200.0)]


def test_docs_generate_works(new_york):
    run_dbt(new_york, "docs", "generate", dbt_vars={"reporting_timezone": "America/New_York"})
    catalog = (new_york / "dbt_target" / "catalog.json").read_text()
    assert '"model.engagement_warehouse.cohort_retention"' in catalog


# d starts at 00:30 EDT on 2026-11-01, the 25-hour day the clocks fall back, comes back at 12:00 EST and again
# at 23:50 EST, 24 h 20 min after the start: in rolling one-day windows that is window 0 and window 1 of one day.
FALL_BACK_LOG = [
    ev("d1", "d", "2026-11-01T04:30:00Z"),
    ev("d2", "d", "2026-11-01T17:00:00Z"),
    ev("d3", "d", "2026-11-02T04:50:00Z"),
]


def test_rolling_one_day_windows_on_the_25_hour_day(tmp_path):
    data_dir = tmp_path / "data"
    write_lines(data_dir / "landing" / "fall_back.jsonl", FALL_BACK_LOG)
    ingest_landing(IngestSettings(data_dir=data_dir))
    tz = {"reporting_timezone": "America/New_York"}
    run_dbt(data_dir, "seed", dbt_vars=tz)
    run_dbt(data_dir, "run", "--select", "+cohort_retention_rolling", dbt_vars=tz)
    rows = query(
        data_dir,
        "select cohort_start, period_number, cohort_size, returned_in_period_0, retained_users, is_complete "
        "from marts.cohort_retention_rolling where start_event = 'first_activity' and dimension = 'all' "
        "and cohort_grain = 'week' and window_days = 1 order by period_number",
    )
    # one local day, two windows: the 12:00 return is in window 0 (read from the day's events), 23:50 in window 1
    assert rows == [(date(2026, 10, 26), 0, 1, 1, 1, True), (date(2026, 10, 26), 1, 1, 1, 1, False)]
