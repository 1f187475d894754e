"""Erase users from every store of the registry, and suppress their later events.

Order, so that a crash at any point leaves nothing that can bring the user back (the next erasure of the same ids
finishes the job; `privacy.ledger.unfinished` lists requests that did not finish):
1. the request goes in the ledger (hashed ids) and the user ids on the suppression list: from here on the collector
   and ingestion drop the user's events;
2. spool files of the collector naming the user are moved (dead processes) or waited for (live ones) into landing/;
3. in the warehouse: the stitched anonymous ids are resolved and suppressed too; landing files are rewritten
   without the user's rows (manifest kept true); the user's rows leave raw.* and every personal table;
4. activation exports, Great Expectations results and MLflow training data are scrubbed, and the live state in
   Redis (live/) deleted;
5. dbt rebuilds the tables (aggregates) from what is left; incremental models are not rebuilt (their rows were
   per user and are gone);
6. warehouse.duckdb is copied into a fresh file (no freed block keeps old rows);
7. the serving copy and exports are published again and older published versions removed;
8. the ledger gets what each store lost.
Steps 5 to 7 are skipped when nothing of the user's was found in the warehouse or the landing files and no earlier
request is unfinished (a repeated request: nothing to rebuild).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.erase import erase_live_state
from privacy import artifacts, ledger
from privacy.identities import Subject, resolve
from privacy.keys import PSEUDONYM, SUBJECT, keyed_hash, privacy_key
from privacy.suppression import add_hashes
from privacy.warehouse import (
    OWNER_COLUMNS,
    connect_writer,
    delete_raw,
    delete_user_rows,
    erase_landing,
    rewrite_database,
)
from settings import Settings
from spark_warehouse.erase import erase_users as erase_spark_users
from spark_warehouse.layout import spark_root
from spark_warehouse.raw_export import export_raw
from stores.registry import table_stores

ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT = ROOT / "dbt_project"
DBT_TARGET = "target/privacy"  # its own target folder: Dagster's manifest in target/ is left alone
STEPS = ("suppress", "spool", "landing", "warehouse", "files", "dbt", "rewrite", "publish")

Progress = Callable[[str], None]


@dataclass
class ErasureReport:
    """What one erasure did, store by store (no clear id in it: it goes to the ledger and the logs)."""

    request_id: str
    user_hashes: list[str]
    anonymous_ids: int = 0
    removed: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"erasure {self.request_id}: {len(self.user_hashes)} user id(s), {self.anonymous_ids} stitched "
            f"anonymous id(s), {sum(self.seconds.values()):.1f} s"
        ]
        for store, what in self.removed.items():
            lines.append(f"  {store}: {json.dumps(what, sort_keys=True)}")
        lines.append("  seconds: " + ", ".join(f"{step} {seconds:.1f}" for step, seconds in self.seconds.items()))
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def erase(
    settings: Settings,
    user_ids: list[str],
    progress: Progress | None = None,
    scrub_run_history: Callable[[frozenset[str]], dict[str, int]] | None = None,
) -> ErasureReport:
    """Erase `user_ids` (clear ids, as apps send them) and every anonymous id stitched to them from every store;
    `scrub_run_history` removes Dagster runs that name them (given by the caller that has a Dagster instance)."""
    say = progress or (lambda message: None)
    key = privacy_key(settings.privacy)
    report = ErasureReport(uuid.uuid4().hex, sorted(keyed_hash(key, SUBJECT, value) for value in user_ids))
    interrupted = ledger.unfinished(settings.privacy.ledger_path)  # earlier requests that may have left work undone
    ledger.append(
        settings.privacy.ledger_path,
        {"event": "requested", "request_id": report.request_id, "at": ledger.now_text(), "users": report.user_hashes},
    )
    clock = _Clock(report, say)

    with clock("suppress"):
        add_hashes(settings.privacy.suppression_path, report.user_hashes)
    with clock("spool"):
        report.removed["collector spool"] = artifacts.settle_spool(settings.collector, user_ids)
    stored_ids = _stored_ids(settings, key, user_ids)
    with clock("landing"):
        con = connect_writer(settings.ingest.warehouse_path)
        try:
            subject = _resolve(con, stored_ids)
            report.anonymous_ids = len(subject.anonymous_ids)
            id_of = (lambda value: keyed_hash(key, PSEUDONYM, value)) if settings.privacy.pseudonymise_ids else None
            landing = erase_landing(con, settings.ingest, subject, id_of, say)
            clear_anonymous = landing.clear_anonymous_ids | (set() if id_of else set(subject.anonymous_ids))
            add_hashes(
                settings.privacy.suppression_path, (keyed_hash(key, SUBJECT, value) for value in clear_anonymous)
            )
            report.removed["landing files"] = {
                "files_scanned": landing.files_scanned,
                "files_rewritten": len(landing.files_rewritten),
                "rows_removed": landing.rows_removed,
            }
            report.problems += [f"landing file {name} not rewritten: {why}" for name, why in landing.failed.items()]
            with clock("warehouse"):
                removed = delete_raw(con, subject)
                removed.update(delete_user_rows(con, subject, table_stores(), say))
                con.execute("checkpoint")
                if spark_root(settings.data_dir).exists():
                    # the Spark target's Parquet tables: raw/ exported again from the ledger, the rest rewritten
                    export_raw(con, settings.data_dir)
                    spark_removed = erase_spark_users(settings.data_dir, subject.all_ids, OWNER_COLUMNS)
                    removed.update({f"spark/{table}": rows for table, rows in spark_removed.items()})
            report.removed["warehouse tables"] = {table: rows for table, rows in removed.items() if rows}
        finally:
            con.close()
    every_id = set(user_ids) | clear_anonymous | subject.all_ids
    with clock("files"):
        report.removed["activation exports"] = artifacts.erase_activation_exports(
            settings.activation.export_dir, every_id
        )
        report.removed["gx results"] = len(artifacts.erase_gx_results(settings.data_dir, every_id))
        training = artifacts.erase_training_data(settings.ml, subject.all_ids | set(user_ids))
        report.removed["mlflow training data"] = {
            "runs": len(training),
            "rows": sum(training.values()),
            "model_versions_tagged": artifacts.tag_runs(settings.ml, training),
        }
        report.removed["live state"] = erase_live_state(settings.live.redis_url, settings.live.key_prefix, every_id)
        if report.removed["gx results"]:
            _rebuild_data_docs(settings)
    if report.removed["warehouse tables"] or report.removed["landing files"]["rows_removed"] or interrupted:
        with clock("dbt"):
            report.removed["dbt tables rebuilt"] = _rebuild_tables(settings, say)
        with clock("rewrite"):
            before, after = rewrite_database(settings.ingest.warehouse_path)
            report.removed["warehouse.duckdb"] = {"bytes_before": before, "bytes_after": after}
        with clock("publish"):
            report.removed["serving copy"] = _republish(settings)
    else:
        say("nothing of theirs was in the warehouse or the landing files: no rebuild, rewrite or republish")
    if scrub_run_history is not None:
        with clock("run history"):
            report.removed["dagster runs"] = scrub_run_history(frozenset(every_id))
    ledger.append(
        settings.privacy.ledger_path,
        {
            "event": "finished",
            "request_id": report.request_id,
            "at": ledger.now_text(),
            "users": report.user_hashes,
            "anonymous_ids": report.anonymous_ids,
            "removed": report.removed,
            "seconds": {step: round(seconds, 2) for step, seconds in report.seconds.items()},
            "problems": report.problems,
        },
    )
    return report


def erase_with_progress(settings: Settings, user_ids: list[str]) -> ErasureReport:
    """`erase` with a progress bar over its steps (the CLI's); Dagster runs that name the ids are removed too."""
    from tqdm import tqdm

    from orchestration.run_history import scrub_runs  # the CLI may use Dagster's instance; privacy/ does not

    with tqdm(total=len(STEPS) + 1, desc="erase", unit=" step") as bar:

        def say(message: str) -> None:
            if message.startswith("step: "):
                bar.update(1)
            bar.set_postfix_str(message[:60])

        home = Path(settings.commands.dagster_home) if settings.commands.dagster_home else None
        return erase(settings, user_ids, say, lambda ids: scrub_runs(home or settings.data_dir / "dagster_home", ids))


class _Clock:
    """Times each step into the report and announces it."""

    def __init__(self, report: ErasureReport, say: Progress) -> None:
        self.report = report
        self.say = say

    def __call__(self, step: str) -> _Step:
        return _Step(self, step)


class _Step:
    def __init__(self, clock: _Clock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.report.seconds[self.name] = time.perf_counter() - self.started
        self.clock.say(f"step: {self.name} ({self.clock.report.seconds[self.name]:.1f} s)")


def _stored_ids(settings: Settings, key: bytes, user_ids: list[str]) -> list[str]:
    """The ids as the warehouse holds them (their pseudonyms when ingestion pseudonymises)."""
    if settings.privacy.pseudonymise_ids:
        return [keyed_hash(key, PSEUDONYM, value) for value in user_ids]
    return list(user_ids)


def _resolve(con: Any, stored_ids: list[str]) -> Subject:
    from stores.schema import ensure

    ensure(con, "raw")
    return resolve(con, stored_ids)


def _rebuild_tables(settings: Settings, say: Progress) -> bool:
    """dbt builds every table model again from what is left (incremental models and views are not touched); not
    when dbt has built nothing yet (no staging.stg_events)."""
    from stores.schema import connect

    with connect(str(settings.ingest.warehouse_path)) as con:
        built = con.execute(
            # a table, or with DBT_TARGET=spark a view over Spark's (spark_warehouse.catalog)
            "select count(*) from (select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views()) where schema_name = 'staging' "
            "and table_name = 'stg_events'"
        ).fetchone()[0]
    if not built:
        say("dbt: nothing built yet, nothing to rebuild")
        return False
    dbt = Path(sys.executable).parent / "dbt"
    command = [
        str(dbt) if dbt.exists() else "dbt",
        "run",
        "--select",
        "config.materialized:table",
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        DBT_TARGET,
        *(["--target", "spark"] if settings.engine.on_spark else []),
        "--vars",
        json.dumps(settings.dbt_vars()),
        "--quiet",
    ]
    say("dbt: rebuilding the table models")
    done = subprocess.run(command, cwd=DBT_PROJECT, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise RuntimeError("dbt run of the table models failed after the deletes:\n" + "\n".join(tail))
    return True


def _rebuild_data_docs(settings: Settings) -> None:
    from expectations.runner import SuiteRunner

    SuiteRunner(settings.data_dir, keep_results=settings.quality.gx_keep_results).build_docs_index()


def _republish(settings: Settings) -> dict[str, Any]:
    """A new serving copy and exports from the erased warehouse; every older version is removed."""
    from serving.publish import publish
    from stores.schema import connect

    serving_path = settings.data_dir / "serving.duckdb"
    if not (settings.data_dir / "published").exists():
        return {"published": False}
    with connect(str(settings.ingest.warehouse_path)) as con:
        result = publish(con, serving_path, settings.data_dir / "exports", keep=1)
    return {"published": True, "version": result.version_dir.name, "tables": len(result.tables)}
