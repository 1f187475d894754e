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
    ev("e08", "u4", timestamp=at("12")),
    ev("e09", "u4", timestamp=at("20")),
    # u5: anonymous page view in W1, identified in W2 (identify is not activity, the track call is), back in W3.
    ev("e10", None, anonymous_id="anon-5", type="page", event=None, timestamp=at("14")),
    ev("e11", "u5", anonymous_id="anon-5", type="identify", event=None, timestamp=at("21")),
    ev("e12", "u5", anonymous_id="anon-5", event="Signed Up", timestamp=at("21", "10:01:00")),
    ev("e13", "u5", timestamp=at("28")),  # the latest event: as_of = 2026-01-28T10:00:00
    # u6 only ever received an email: a system event, so never an active user.
    ev("e14", "u6", event="Email Sent", timestamp=at("06")),
]
# e08 sent twice: the copy in a second file is dropped by ingestion and by staging's dedup.
SECOND_FILE = [ev("e08", "u4", timestamp=at("12"))]

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
    finally:
        run_dbt(warehouse, "build", "--select", "int_as_of+")
