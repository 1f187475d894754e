"""Dagster runs whose records name an erased id, deleted from the instance's run and event storage.

Check metadata keeps a few unexpected values of each suite and logs may quote a rejected line, so a run's events can
hold a user's id. There is no per-event edit: a run that names an id is deleted whole (`DagsterInstance.delete_run`,
what `dagster run delete` does), with its compute logs, and the SQLite files are vacuumed so that no free page keeps
the text.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
from dagster._serdes import serialize_value


def _needles(ids: Iterable[str]) -> list[str]:
    return [json.dumps(value)[1:-1] for value in ids if value]


def runs_naming(instance: dg.DagsterInstance, ids: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Ids of the runs whose config, tags or events contain one of `ids` (runs in `skip` left out)."""
    needles = _needles(ids)
    skipped = set(skip)
    found = []
    for record in instance.get_run_records():
        run = record.dagster_run
        if run.run_id in skipped:
            continue
        texts = [serialize_value(run)]
        texts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
        if any(needle in text for text in texts for needle in needles):
            found.append(run.run_id)
    return found


def delete_runs(instance: dg.DagsterInstance, run_ids: Iterable[str], home: Path | None) -> int:
    """Delete the runs, their compute logs, then vacuum the instance's SQLite files (under `home`)."""
    deleted = 0
    for run_id in run_ids:
        instance.delete_run(run_id)
        if home is not None:
            shutil.rmtree(home / "storage" / run_id, ignore_errors=True)
        deleted += 1
    if deleted and home is not None:
        for database in home.rglob("*.db"):
            with sqlite3.connect(database) as con:
                con.execute("vacuum")
    return deleted


def scrub_runs(dagster_home: Path, ids: Iterable[str]) -> dict[str, int]:
    """`runs_naming` + `delete_runs` on the instance at `dagster_home` (nothing when there is none)."""
    if not dagster_home.is_dir():
        return {"runs_deleted": 0}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        return {"runs_deleted": delete_runs(instance, runs_naming(instance, ids), dagster_home)}
    finally:
        instance.dispose()
