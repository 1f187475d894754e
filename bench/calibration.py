"""A calibration figure for the machine: the same hand-written DuckDB query on the same generated data each time.

20 million synthetic events (200,000 users over 26 weeks, fixed seed) built in memory by DuckDB, then the weekly
retention matrix of bench/retention_baselines.py over them, best of three. Every benchmark figure is also given
divided by it, so that results from different machines (or a busy hour) can be compared.
"""

from __future__ import annotations

import time

import duckdb

from bench.retention_baselines import WEEKLY_RETENTION_SQL

EVENTS = 20_000_000

SYNTHETIC_EVENTS = f"""
create or replace table raw.events as
select
    'u' || (hash(i) % 200000)::varchar as user_id,
    null::varchar as anonymous_id,
    timestamp '2026-01-05' + to_seconds((hash(i * 7919) % (26 * 7 * 86400))::bigint) as timestamp
from range({EVENTS}) as t(i)
"""


def calibrate(repeats: int = 3) -> dict[str, float]:
    """Seconds of the weekly retention query over the synthetic events (best of `repeats`)."""
    with duckdb.connect() as con:
        con.execute("create schema raw")
        con.execute(SYNTHETIC_EVENTS)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            con.execute(WEEKLY_RETENTION_SQL).fetchall()
            times.append(time.perf_counter() - started)
    return {"events": EVENTS, "weekly_retention_query_s": round(min(times), 3)}


if __name__ == "__main__":
    print(calibrate())
