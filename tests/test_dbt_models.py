"""dbt models on a small hand-written event log whose retention numbers are worked out by hand below."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingestion import IngestSettings, ingest_landing
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow


def at(day: str, time: str = "10:00:00") -> str:
    return f"2026-01-{day}T{time}Z"


def ev(message_id: str, user_id: str | None, **fields: object) -> dict:
    """An event received when it happened."""
    return event(message_id, user_id, received_at=fields.get("timestamp"), **fields)


PAID_SEARCH = {"campaign": {"source": "Google", "medium": "cpc", "name": "brand"}}
U5_TRAITS = {"country": "DE", "plan": "pro"}

# Weeks (Monday start): W0 = 01-05..01-11, W1 = 01-12..01-18, W2 = 01-19..01-25, W3 = 01-26..02-01.
FIXTURE = [
    # u1: first active Mon 01-05 (W0), back in W1 (01-13) and W3 (01-27).
    ev("e01", "u1", event="Order Completed", timestamp=at("05"), properties={"revenue": 20}),
    ev("e02", "u1", timestamp=at("13")),
    ev("e03", "u1", timestamp=at("27")),
    # u2: two days in W0, never again.
    ev("e04", "u2", event="signedUp", timestamp=at("07")),
    ev("e05", "u2", timestamp=at("08")),
    # u3: first active Sunday 01-11 late evening (still W0), back Monday 01-12 (W1).
    ev("e06", "u3", timestamp=at("11", "23:30:00")),
    ev("e07", "u3", timestamp=at("12", "00:10:00")),
    # u4: cohort W1, back in W2.
    ev("e08", "u4", timestamp=at("12"), context=PAID_SEARCH),
    ev("e09", "u4", timestamp=at("20")),
    # u5: anonymous page view in W1, identified in W2 (identify is not activity, the track call is), back in W3.
    ev("e10", None, anonymous_id="anon-5", type="page", event=None, timestamp=at("14")),
    ev("e11", "u5", anonymous_id="anon-5", type="identify", event=None, timestamp=at("21"), traits=U5_TRAITS),
    ev("e12", "u5", anonymous_id="anon-5", event="Signed Up", timestamp=at("21", "10:01:00")),
    ev("e13", "u5", timestamp=at("28")),  # the latest event: as_of = 2026-01-28T10:00:00
    # u6 only ever received an email: a system event, so never an active user.
    ev("e14", "u6", event="Email Sent", timestamp=at("06")),
]
# e08 sent twice: the copy in a second file is dropped by ingestion and by staging's dedup.
SECOND_FILE = [ev("e08", "u4", timestamp=at("12"), context=PAID_SEARCH)]

# Weekly grain: (cohort_start, period) -> (cohort_size, retained, retained_unbounded, is_complete)
EXPECTED_WEEKLY = {
    (date(2026, 1, 5), 0): (3, 3, 3, True),
    (date(2026, 1, 5), 1): (3, 2, 2, True),  # u1, u3
    (date(2026, 1, 5), 2): (3, 0, 1, True),  # nobody; u1 comes back later
    (date(2026, 1, 5), 3): (3, 1, 1, False),  # u1; W3 has not ended at as_of
    (date(2026, 1, 12), 0): (2, 2, 2, True),  # u4, u5 (u5 stitched from its anonymous page view)
    (date(2026, 1, 12), 1): (2, 2, 2, True),
    (date(2026, 1, 12), 2): (2, 1, 1, False),  # u5
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("dbt") / "data"
    landing = data_dir / "landing"
    write_lines(landing / "part1.jsonl", FIXTURE)
    write_lines(landing / "part2.jsonl", SECOND_FILE)
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "build")
    return data_dir


def test_weekly_retention_matches_hand_computed_cells(warehouse):
    rows = query(
        warehouse,
        "select cohort_start, period_number, cohort_size, retained_users, retained_users_unbounded, is_complete "
        "from marts.cohort_retention where grain = 'week' order by 1, 2",
    )
    assert {(r[0], r[1]): r[2:] for r in rows} == EXPECTED_WEEKLY
    rates = query(
        warehouse,
        "select retention_rate, retention_rate_unbounded from marts.cohort_retention "
        "where grain = 'week' and cohort_start = '2026-01-05' and period_number = 2",
    )
    assert rates == [(0.0, pytest.approx(1 / 3))]


def test_daily_and_monthly_grains_are_dense_up_to_as_of(warehouse):
    # Daily cohorts 01-05, 01-07, 01-11, 01-12, 01-14 each run to as_of's day 01-28.
    assert query(warehouse, "select count(*) from marts.cohort_retention where grain = 'day'") == [
        (24 + 22 + 18 + 17 + 15,)
    ]
    u1_days = query(
        warehouse,
        "select period_number, retained_users, retained_users_unbounded, is_complete from marts.cohort_retention "
        "where grain = 'day' and cohort_start = '2026-01-05' and period_number in (8, 9, 22, 23) order by 1",
    )
    assert u1_days == [(8, 1, 1, True), (9, 0, 1, True), (22, 1, 1, True), (23, 0, 0, False)]
    assert query(
        warehouse,
        "select cohort_start, cohort_size, retained_users, is_complete from marts.cohort_retention "
        "where grain = 'month'",
    ) == [(date(2026, 1, 1), 5, 5, False)]


def test_staging_dedups_normalises_names_and_stitches_anonymous_ids(warehouse):
    assert query(warehouse, "select count(*) from staging.stg_events") == [(14,)]
    names = dict(query(warehouse, "select message_id, event_name from staging.stg_events"))
    assert (names["e01"], names["e04"], names["e10"], names["e11"], names["e14"]) == (
        "order_completed",
        "signed_up",
        "page_viewed",
        "identify",
        "email_sent",
    )
    assert query(warehouse, "select user_id, known_user_id from staging.stg_events where message_id = 'e10'") == [
        ("u5", None)
    ]
    active = query(
        warehouse, "select user_id, count(*) from intermediate.int_user_daily_activity group by 1 order by 1"
    )
    assert active == [("u1", 3), ("u2", 2), ("u3", 2), ("u4", 2), ("u5", 3)]
    assert query(warehouse, "select as_of from intermediate.int_as_of")[0][0].isoformat() == "2026-01-28T10:00:00"


def test_pinning_as_of_reproduces_an_earlier_state(warehouse, tmp_path):
    run_dbt(warehouse, "build", "--select", "int_as_of+", dbt_vars={"as_of": "2026-01-13T12:00:00"})
    try:
        rows = query(
            warehouse,
            "select cohort_start, period_number, cohort_size, retained_users, is_complete "
            "from marts.cohort_retention where grain = 'week' order by 1, 2",
        )
        # At 01-13 noon: u1 and u3 are back in W1 (u3 at 00:10, u1 at 10:00); u4 started W1; u5 not yet active.
        assert rows == [
            (date(2026, 1, 5), 0, 3, 3, True),
            (date(2026, 1, 5), 1, 3, 2, False),
            (date(2026, 1, 12), 0, 1, 1, False),
        ]
        # every mart stops at as_of, not only retention
        assert query(warehouse, "select max(activity_date), count(*) from marts.daily_kpis") == [(date(2026, 1, 13), 9)]
        users = query(warehouse, "select user_id from marts.user_segments order by 1")
        assert users == [("u1",), ("u2",), ("u3",), ("u4",)]
        # the per-user incremental models build a pinned state under their own name, leaving theirs untouched
        assert query(warehouse, "select count(*) from intermediate.int_sessions_as_of where session_start_at > "
                     "'2026-01-13 12:00:00'") == [(0,)]  # fmt: skip
        assert query(warehouse, "select count(*) from intermediate.int_sessions where session_start_at > "
                     "'2026-01-13 12:00:00'") != [(0,)]  # fmt: skip
    finally:
        run_dbt(warehouse, "build", "--select", "int_as_of+")
    assert query(warehouse, "select max(activity_date) from marts.daily_kpis") == [(date(2026, 1, 28),)]


W0, W1, W2, W3 = date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 26)


def test_lifecycle_weekly_statuses(warehouse):
    # Active weeks: u1 W0 W1 W3, u2 W0, u3 W0 W1, u4 W1 W2, u5 W1 W2 W3.
    rows = query(warehouse, "select period_start, status, users from marts.lifecycle where grain = 'week'")
    assert sorted(rows) == sorted([
        (W0, "new", 3),
        (W1, "new", 2), (W1, "returning", 2), (W1, "dormant", 1),  # u2 gone
        (W2, "returning", 2), (W2, "dormant", 2),  # u1, u3 gone
        (W3, "resurrecting", 1), (W3, "returning", 1), (W3, "dormant", 1),  # u1 back, u4 gone
    ])  # fmt: skip


def test_lifecycle_identities_hold_at_every_grain(warehouse):
    # previous period's active users = returning + dormant now
    broken = query(
        warehouse,
        """
        with active as (
            select grain, period_start, sum(users) filter (where status <> 'dormant') as active_users
            from marts.lifecycle group by grain, period_start
        ),
        carried as (
            select grain, period_start, sum(users) filter (where status in ('returning', 'dormant')) as carried
            from marts.lifecycle group by grain, period_start
        )
        select carried.*, previous.active_users
        from carried
        join active as previous on previous.grain = carried.grain
         and previous.period_start = case carried.grain when 'day' then carried.period_start - interval 1 day
                                    when 'week' then carried.period_start - interval 7 day
                                    else carried.period_start - interval 1 month end
        where coalesce(carried.carried, 0) <> previous.active_users
        """,
    )
    assert broken == []


def test_first_matching_and_recurring_cohorts(warehouse):
    rows = query(
        warehouse,
        "select start_type, start_event, cohort_start, period_number, cohort_size, returned_in_period_0, "
        "retained_users, retained_users_unbounded, is_complete from marts.cohort_retention_by_start "
        "where grain = 'week' order by 1, 2, 3, 4",
    )
    assert rows == [
        # u1 ordered in W0 only; recurring on orders = one cohort; back in W1 and W3, never again in W0
        ("first_matching", "order_completed", W0, 0, 1, 0, 1, 1, True),
        ("first_matching", "order_completed", W0, 1, 1, 0, 1, 1, True),
        ("first_matching", "order_completed", W0, 2, 1, 0, 0, 1, True),
        ("first_matching", "order_completed", W0, 3, 1, 0, 1, 1, False),
        # u2 signed up Wed 01-07 and came back 01-08 (same week: returned in period 0 after the start)
        ("first_matching", "signed_up", W0, 0, 1, 1, 1, 1, True),
        ("first_matching", "signed_up", W0, 1, 1, 1, 0, 0, True),
        ("first_matching", "signed_up", W0, 2, 1, 1, 0, 0, True),
        ("first_matching", "signed_up", W0, 3, 1, 1, 0, 0, False),
        # u5 signed up 01-21 (W2), nothing else that week; back 01-28 (W3)
        ("first_matching", "signed_up", W2, 0, 1, 0, 1, 1, True),
        ("first_matching", "signed_up", W2, 1, 1, 0, 1, 1, False),
        ("recurring", "order_completed", W0, 0, 1, 0, 1, 1, True),
        ("recurring", "order_completed", W0, 1, 1, 0, 1, 1, True),
        ("recurring", "order_completed", W0, 2, 1, 0, 0, 1, True),
        ("recurring", "order_completed", W0, 3, 1, 0, 1, 1, False),
    ]


def test_rolling_seven_day_windows_count_from_each_members_own_start(warehouse):
    rows = query(
        warehouse,
        "select cohort_start, period_number, cohort_size, returned_in_period_0, retained_users, is_complete "
        "from marts.cohort_retention_rolling where start_event = 'first_activity' and dimension = 'all' "
        "and cohort_grain = 'week' and window_days = 7 order by 1, 2",
    )
    assert rows == [
        # u1 t0 01-05 10:00 (back after 8 and 22 days), u2 (back next day), u3 t0 01-11 23:30 (back 40 min later)
        (W0, 0, 3, 2, 3, True),
        (W0, 1, 3, 2, 1, True),
        (W0, 2, 3, 2, 0, False),  # u3's third week ends 02-01 23:30, after as_of
        (W0, 3, 3, 2, 1, False),
        # u4 t0 01-12 10:00 (back after 8 days); u5 t0 01-14 10:00 (back after 7 days 1 minute and 14 days)
        (W1, 0, 2, 0, 2, True),
        (W1, 1, 2, 0, 2, True),  # u5's second week ends exactly at as_of 01-28 10:00
        (W1, 2, 2, 0, 1, False),
    ]


def test_bracket_retention(warehouse):
    rows = query(
        warehouse,
        "select cohort_start, bracket, retained_users, is_complete from marts.cohort_retention_brackets order by 1, 2",
    )
    assert rows == [
        (W0, "day 1", 2, True),  # u2 (01-08), u3 (01-12)
        (W0, "days 15-30", 1, False),  # u1 on day 22
        (W0, "days 2-3", 0, True),
        (W0, "days 4-7", 0, True),
        (W0, "days 8-14", 1, True),  # u1 on day 8
        (W1, "day 1", 0, True),
        (W1, "days 15-30", 0, False),
        (W1, "days 2-3", 0, True),
        (W1, "days 4-7", 1, True),  # u5 on day 7
        (W1, "days 8-14", 2, False),  # u4 day 8, u5 day 14; u5's day 14 is as_of's day
    ]


def test_retention_split_by_first_touch_channel_and_trait(warehouse):
    rows = query(
        warehouse,
        "select dimension, dimension_value, cohort_start, period_number, cohort_size, retained_users "
        "from marts.cohort_retention_by_dimension where grain = 'week' and cohort_start = '2026-01-12' "
        "and dimension in ('first_touch_channel', 'country') order by 1, 2, 4",
    )
    assert rows == [
        ("country", "DE", W1, 0, 1, 1),  # u5's identify traits
        ("country", "DE", W1, 1, 1, 1),
        ("country", "DE", W1, 2, 1, 1),
        ("country", "unknown", W1, 0, 1, 1),  # u4 never identified
        ("country", "unknown", W1, 1, 1, 1),
        ("country", "unknown", W1, 2, 1, 0),
        ("first_touch_channel", "direct", W1, 0, 1, 1),  # u5's first event has no campaign
        ("first_touch_channel", "direct", W1, 1, 1, 1),
        ("first_touch_channel", "direct", W1, 2, 1, 1),
        ("first_touch_channel", "paid_search", W1, 0, 1, 1),  # u4: medium cpc
        ("first_touch_channel", "paid_search", W1, 1, 1, 1),
        ("first_touch_channel", "paid_search", W1, 2, 1, 0),
    ]


def test_retention_curve_weights_complete_cells_only(warehouse):
    rows = query(
        warehouse,
        "select period_number, cohorts, users_completed, retained_users, retention_rate "
        "from marts.retention_curve where grain = 'week' order by 1",
    )
    # k=1: W0 (3 users, 2 back) and W1 (2 users, 2 back) are complete -> 4 / 5, not the mean of 2/3 and 1
    # k=2: only W0 is complete -> 0 / 3; k=3: no complete cell, so no row rather than a zero
    assert rows == [(0, 2, 5, 5, 1.0), (1, 2, 5, 4, 0.8), (2, 1, 3, 0, 0.0)]


def test_daily_kpis(warehouse):
    rows = {
        r[0]: r[1:]
        for r in query(
            warehouse,
            "select activity_date, dau, wau, mau, new_users, orders, revenue, conversion_rate from marts.daily_kpis",
        )
    }
    assert len(rows) == 24  # 01-05 .. 01-28, days without activity included
    assert rows[date(2026, 1, 5)] == (1, 1, 1, 1, 1, 20.0, 1.0)
    assert rows[date(2026, 1, 10)] == (0, 2, 2, 0, 0, 0.0, None)  # u1 (01-05) and u2 (01-08) in the last 7 days
    assert rows[date(2026, 1, 12)] == (2, 3, 4, 1, 0, 0.0, 0.0)  # u3, u4 today; u2 within 7 days; u1 within 30
    assert rows[date(2026, 1, 28)] == (1, 2, 5, 0, 0, 0.0, 0.0)


def test_user_segments_flags_and_stages(warehouse):
    rows = {
        r[0]: r[1:]
        for r in query(
            warehouse,
            "select user_id, round(days_since_last_active, 4), lifecycle_stage, is_active_recent, is_lapsed "
            "from marts.user_segments",
        )
    }
    assert rows == {
        "u1": (1.0, "active", True, False),
        "u2": (20.0, "at_risk", False, False),
        "u3": (16.4097, "at_risk", False, False),  # last active 01-12 00:10
        "u4": (8.0, "at_risk", False, False),
        "u5": (0.0, "active", True, False),
    }
    # recency: u5 (0 days) ranks top, u2 (20 days) bottom
    scores = dict(query(warehouse, "select user_id, recency_score from marts.user_segments"))
    assert scores == {"u5": 5, "u1": 4, "u4": 3, "u3": 2, "u2": 1}
