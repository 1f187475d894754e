"""A suite with a watermark validates only the rows (re)computed since its last pass (expectations/watermarks.py)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from expectations import SUITES, SuiteRunner
from expectations.watermarks import validate_past_watermark, validated_through

FIRST, SECOND, THIRD = datetime(2026, 1, 1, 1), datetime(2026, 1, 2, 1), datetime(2026, 1, 3, 1)


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute("create schema staging")
        connection.execute(
            "create table staging.stg_events (message_id varchar, user_id varchar, event_name varchar, "
            "event_type varchar, event_at timestamp, event_date date, is_activity boolean, revenue decimal(18, 4), "
            "staged_at timestamp)"
        )
        yield connection


def stage(con: duckdb.DuckDBPyConnection, staged_at: datetime, ids: range, event_name: str = "page_viewed") -> None:
    for i in ids:
        con.execute(
            "insert into staging.stg_events values (?, 'u1', ?, 'page', ?, ?, true, null, ?)",
            [f"m{i}", event_name, staged_at, staged_at.date(), staged_at],
        )


def test_only_rows_past_the_watermark_are_validated_and_failures_are_validated_again(con):
    runner = SuiteRunner()
    spec = SUITES["stg_events"]
    stage(con, FIRST, range(5))
    outcome, since = validate_past_watermark(runner, con, spec)
    assert (outcome.success, outcome.rows, since) == (True, 5, None)
    assert validated_through(con, "stg_events") == FIRST

    # three new rows, one with a name that is not snake_case: only they are read, and the watermark stays
    stage(con, SECOND, range(5, 7))
    stage(con, SECOND, range(7, 8), event_name="Bad Name")
    outcome, since = validate_past_watermark(runner, con, spec)
    assert (outcome.success, outcome.rows, since) == (False, 3, FIRST)
    assert [f.unexpected_count for f in outcome.failures] == [1]
    assert validated_through(con, "stg_events") == FIRST

    # the next run reads the failed rows again with the new ones, and passes once they are fixed
    con.execute("update staging.stg_events set event_name = 'bad_name' where message_id = 'm7'")
    stage(con, THIRD, range(8, 10))
    outcome, since = validate_past_watermark(runner, con, spec)
    assert (outcome.success, outcome.rows, since) == (True, 5, FIRST)
    assert validated_through(con, "stg_events") == THIRD
