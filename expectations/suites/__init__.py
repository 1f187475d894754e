"""Every suite the warehouse runs, by name. Each module builds one suite for one dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import great_expectations as gx


@dataclass(frozen=True)
class SuiteSpec:
    """A suite and the rows it is meant for.

    relation: the table to read; partition_key: SQL expression whose hash splits the rows into chunks, so that
    uniqueness over that key holds overall exactly when it holds within every chunk. watermark_column: a column
    of the relation that grows with every (re)computed row (stg_events.staged_at); when set, a check validates
    only the rows past the last watermark that passed (expectations/watermarks.py).
    """

    name: str
    relation: str
    partition_key: str
    build: Callable[[], gx.ExpectationSuite]
    watermark_column: str | None = None


def _specs() -> dict[str, SuiteSpec]:
    from expectations.suites import cohort_retention, daily_kpis, raw_events, stg_events

    specs = [raw_events.SPEC, stg_events.SPEC, cohort_retention.SPEC, daily_kpis.SPEC]
    return {spec.name: spec for spec in specs}


SUITES: dict[str, SuiteSpec] = _specs()
