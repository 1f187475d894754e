"""Validate only what changed: a per-suite watermark of the rows that already passed.

An incremental model stamps every row it (re)computes (stg_events.staged_at). The check validates the rows past
the suite's watermark and moves the watermark only when they pass, so rows that failed are validated again on the
next run, and a full refresh (every row stamped anew) is validated whole. Uniqueness is then checked within the
new rows only; the dbt `unique` test covers the whole table.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from expectations.runner import SuiteRunner, ValidationOutcome
from expectations.suites import SuiteSpec
from stores.schema import ensure

WATERMARKS_TABLE = "meta.suite_watermarks"


def ensure_watermarks_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create meta.suite_watermarks (suite, validated_through, updated_at) when missing."""
    ensure(con, WATERMARKS_TABLE)


def validated_through(con: duckdb.DuckDBPyConnection, suite: str) -> datetime | None:
    """The newest watermark value whose rows passed this suite, or None before the first pass."""
    ensure_watermarks_table(con)
    row = con.execute(f"select validated_through from {WATERMARKS_TABLE} where suite = ?", [suite]).fetchone()
    return None if row is None else row[0]


def validate_past_watermark(
    runner: SuiteRunner, con: duckdb.DuckDBPyConnection, spec: SuiteSpec
) -> tuple[ValidationOutcome, datetime | None]:
    """Validate the rows of `spec` past its watermark (all rows before the first pass); move it on success.

    Returns the outcome and the watermark the rows were validated from (None: the whole table).
    """
    if spec.watermark_column is None:
        raise ValueError(f"suite {spec.name} has no watermark column")
    column = spec.watermark_column
    since = validated_through(con, spec.name)
    newest = con.execute(f"select max({column}) from {spec.relation} as watermarked").fetchone()[0]
    if since is None:
        outcome = runner.validate(con, spec)
    else:
        outcome = runner.validate(con, spec, where=f"{column} > $since", params={"since": since})
    if outcome.success and newest is not None:
        con.execute(
            f"insert or replace into {WATERMARKS_TABLE} values (?, ?, current_timestamp::timestamp)",
            [spec.name, newest],
        )
    return outcome, since
