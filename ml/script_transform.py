"""JSON lines in and out of Spark's script transform, for the statistics that run as Python on Spark (dbt-spark
runs Python models only on Databricks): rows cross as JSON objects, one per line, so that no client value (a
variant name with a tab or a newline) can break a row."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import pandas as pd


def json_lines_in(lines: Iterable[str], columns: list[str]) -> pd.DataFrame | None:
    """The input rows as a frame of `columns` (a null field may be absent from its object; None when no rows)."""
    records = [json.loads(line) for line in lines if line.strip()]
    if not records:
        return None
    frame = pd.DataFrame.from_records(records).reindex(columns=columns)
    return frame.astype(object).where(frame.notna(), None)


def json_lines_out(frame: pd.DataFrame) -> Iterator[str]:
    """The result rows as JSON objects, undefined numbers as null."""
    for record in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        yield json.dumps(record, allow_nan=False)
