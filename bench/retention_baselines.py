"""The weekly retention matrix two plain ways, as baselines for the pipeline: one DuckDB query and pandas.

Both read raw.events of a warehouse directly (all events count as activity here: the baselines measure the
engine, not our definitions). Run as a script so that each gets its own process for time and memory.
"""

from __future__ import annotations

import sys
import time

import duckdb

WEEKLY_RETENTION_SQL = """
with activity as (
    select coalesce(user_id, anonymous_id) as user_id, date_trunc('week', timestamp)::date as week
    from raw.events
    group by all
),
cohorts as (select user_id, min(week) as cohort_week from activity group by user_id)
select cohort_week, date_diff('week', cohort_week, week) as period_number, count(*) as retained_users
from activity join cohorts using (user_id)
group by all
"""


def duckdb_baseline(path: str) -> int:
    with duckdb.connect(path, read_only=True) as con:
        return len(con.execute(WEEKLY_RETENTION_SQL).fetchall())


def pandas_baseline(path: str) -> int:
    with duckdb.connect(path, read_only=True) as con:
        events = con.execute("select coalesce(user_id, anonymous_id) as user_id, timestamp from raw.events").df()
    events["week"] = events["timestamp"].dt.to_period("W-SUN").dt.start_time
    activity = events[["user_id", "week"]].drop_duplicates()
    activity["cohort_week"] = activity.groupby("user_id")["week"].transform("min")
    activity["period_number"] = (activity["week"] - activity["cohort_week"]).dt.days // 7
    return len(activity.groupby(["cohort_week", "period_number"]).size())


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    cells = duckdb_baseline(path) if kind == "duckdb" else pandas_baseline(path)
    print(f"{cells} {time.perf_counter() - started:.3f}")
