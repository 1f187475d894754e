"""The same events built on DuckDB and on Spark give the same tables, row for row, and stay equal incrementally.

Generated events (dirty rows, duplicates and late arrivals included) plus the incremental edge cases of
test_dbt_incremental (an anonymous id linked to a user a batch later, a link moved by an earlier event, an event 40
days late) land in two batches. DuckDB builds everything after each batch. Spark builds, after the first batch,
the incremental models and what they read, and after the second batch everything: so every incremental model on
Spark has taken one incremental step (macros/spark/incremental.sql) before the comparison. Every table of seeds,
staging, intermediate and marts is then compared (spark_warehouse.compare): doubles within a relative 1e-9 (the
engines sum in different orders), everything else exactly; only the columns saying when a build ran are left out.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from demo_events import GeneratorConfig, generate
from ingestion import IngestSettings, ingest_landing
from spark_warehouse.compare import compare_warehouses
from spark_warehouse.raw_export import export_raw
from tests.conftest import run_dbt, write_lines
from tests.test_dbt_incremental import EDGE_FIRST, EDGE_SECOND

pytestmark = pytest.mark.slow

WAREHOUSE = ("spark", "warehouse")
PARTITIONED = {"stg_events": ("staging.db", "stg_events"), "int_users": ("intermediate.db", "int_users")}
# per partitioned table, its partitions' data files after the first batch (filled by the fixture)
FILES_AFTER_FIRST_BATCH: dict[str, dict[str, set[str]]] = {}


def _load(data_dir: Path) -> None:
    """Ingest the landing folder into the ledger and export raw.* to the Parquet tables Spark reads."""
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        export_raw(con, data_dir)


def _spark(data_dir: Path, *args: str) -> None:
    run_dbt(data_dir, *args, "--target", "spark", dbt_vars={"data_dir": str(data_dir)})


def _partition_files(folder: Path) -> dict[str, set[str]]:
    """Each partition folder's (`column=value`) data file names."""
    return {
        partition.name: {path.name for path in partition.glob("*.parquet")}
        for partition in folder.iterdir()
        if partition.is_dir() and "=" in partition.name
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("spark") / "data"
    landing = data_dir / "landing"
    landing.mkdir(parents=True)
    generate(replace(GeneratorConfig(users=1, seed=5), users=80, months=2), data_dir)
    write_lines(landing / "edge_first.jsonl", EDGE_FIRST)
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the Python that marts.experiment_results' transform starts
    try:
        _load(data_dir)
        run_dbt(data_dir, "seed")
        run_dbt(data_dir, "run")
        # seeds and models in one invocation: each start of dbt on Spark costs a JVM and a session (about 17 s)
        _spark(
            data_dir, "build", "--exclude-resource-type", "test",
            "--select", "resource_type:seed", "+config.materialized:incremental",
        )  # fmt: skip
        for name, (schema, table) in PARTITIONED.items():
            FILES_AFTER_FIRST_BATCH[name] = _partition_files(data_dir.joinpath(*WAREHOUSE, schema, table))
        write_lines(landing / "edge_second.jsonl", EDGE_SECOND)
        _load(data_dir)
        run_dbt(data_dir, "run")
        _spark(data_dir, "run")
    finally:
        if previous is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = previous
    return data_dir


def test_every_table_is_equal_on_both_engines(built: Path) -> None:
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        comparisons = compare_warehouses(con, built)
    differing = {result.table: result.differences for result in comparisons if not result.equal}
    assert not differing, differing
    compared = {result.table: result.duckdb_rows for result in comparisons}
    assert len(compared) >= 45
    # the cases the comparison must not pass by being empty
    assert compared["staging.stg_events"] > 3000
    assert compared["marts.experiment_results"] >= 4
    assert compared["marts.experiment_metric_results"] >= 14 and compared["marts.experiment_decisions"] >= 2
    assert compared["marts.audience_segments"] > 0
    assert compared["intermediate.int_funnel_journeys"] > 100 and compared["marts.funnel_conversion"] > 0
    assert compared["intermediate.int_path_steps"] > 100 and compared["marts.path_top_sequences"] > 0


def test_restitching_reached_spark_incrementally(built: Path) -> None:
    """anon_x's pages moved to edge_u1 in the second batch, on Spark too (the anonymous 'user' is gone)."""
    with duckdb.connect() as con:
        users = built / "spark" / "warehouse" / "intermediate.db" / "int_users"
        rows = con.execute(
            f"select user_id from read_parquet('{users}/**/*.parquet') where user_id in ('anon_x', 'edge_u1')"
        ).fetchall()
    assert rows == [("edge_u1",)]


def _changed_partitions(built: Path, name: str) -> tuple[set[str], set[str]]:
    """(partitions whose files the second batch replaced or added, partitions it left alone) of a table."""
    before = FILES_AFTER_FIRST_BATCH[name]
    after = _partition_files(built.joinpath(*WAREHOUSE, *PARTITIONED[name]))
    changed = {partition for partition in before.keys() | after.keys() if before.get(partition) != after.get(partition)}
    return changed, set(after) - changed


def test_the_second_batch_rewrote_only_the_days_it_touched(built: Path) -> None:
    """stg_events is partitioned by event_date on Spark: the new events' days (10-15, 10-18, 10-25 and 09-04, the
    late one) and the days of the rows re-stitched (anon_x's pages of 10-05 and 10-12, anon_y's of 10-21)."""
    changed, kept = _changed_partitions(built, "stg_events")
    days = ("09-04", "10-05", "10-12", "10-15", "10-18", "10-21", "10-25")
    assert changed == {f"event_date=2026-{day}" for day in days}
    assert len(kept) > 40


def test_the_second_batch_rewrote_only_its_users_buckets(built: Path) -> None:
    """int_users is partitioned by a hash of user_id: the batch recomputes edge_u1, edge_u3, edge_u2 (anon_y's page
    moved from it) and anon_x (gone), so at most 4 of the 32 buckets are rewritten, those of edge_u1 and edge_u3
    among them."""
    changed, kept = _changed_partitions(built, "int_users")
    users = built.joinpath(*WAREHOUSE, *PARTITIONED["int_users"])
    with duckdb.connect() as con:
        buckets = con.execute(
            f"select distinct 'spark_user_bucket=' || spark_user_bucket from read_parquet('{users}/**/*.parquet', "
            "hive_partitioning = true) where user_id in ('edge_u1', 'edge_u3')"
        ).fetchall()
    assert {bucket for (bucket,) in buckets} <= changed
    assert 1 <= len(changed) <= 4 and len(kept) >= 20


def test_dbt_sparks_two_faults_are_mended(built: Path) -> None:
    """macros/spark/dbt_spark_fixes.sql, on Spark itself: dbt.dateadd keeps the sub-seconds and brackets the
    interval (dbt-spark 1.11.0's gives 10:00:00 and adds 1 + 1 * 7 = 8 days for `1 + 1` weeks), and a seed's empty
    cell is null, not the string 'None' (experiments.csv's onboarding_2x2 has no planned_split)."""
    shifted = "{{ dbt.dateadd('week', '1 + 1', \"timestamp'2026-01-01 10:00:00.123456'\") }}"
    seed = "{{ ref('experiments') }}"
    inline = (
        f"select cast({shifted} as string) as shifted, "
        f"(select count(*) from {seed} where planned_split = 'None') as none_texts, "
        f"(select count(*) from {seed} where experiment_id = 'onboarding_2x2' and planned_split is null) as nulls"
    )
    result = run_dbt(
        built, "show", "--inline", inline, "--target", "spark", "--output", "json", "--log-format", "json",
        dbt_vars={"data_dir": str(built)},
    )  # fmt: skip
    shown = [
        json.loads(json.loads(line)["data"]["preview"])
        for line in result.stdout.splitlines()
        if line.startswith("{") and '"preview"' in line
    ]
    assert shown == [[{"shifted": "2026-01-15 10:00:00.123456", "none_texts": 0, "nulls": 1}]]


def test_warehouse_duckdb_reads_sparks_tables_through_views(built: Path, tmp_path: Path) -> None:
    """What the Dagster assets give warehouse.duckdb after dbt ran on Spark (spark_warehouse.catalog), in a file of
    its own here (the built warehouse.duckdb holds DuckDB's tables of the same names); publish lists the views."""
    from serving.publish import _tables
    from spark_warehouse.catalog import attach_tables

    with duckdb.connect(str(tmp_path / "catalog.duckdb")) as con:
        attached = attach_tables(con, built)
        con.execute(f"attach '{built / 'warehouse.duckdb'}' as duck (read_only)")
        for name in attached:
            spark_rows = con.execute(f"select count(*) from {name}").fetchone()[0]
            duck_rows = con.execute(f"select count(*) from duck.{name}").fetchone()[0]
            assert spark_rows == duck_rows, name
        published = {f"{schema}.{table}" for schema, table in _tables(con)}
    assert len(attached) >= 45 and "staging.stg_events" in attached
    assert {name for name in attached if name.startswith("marts.")} <= published


def test_an_erased_user_leaves_no_row_in_sparks_files(built: Path) -> None:
    """Last in this file: it changes the built warehouse. The ledger loses the user's raw rows (as privacy.erase
    does first), raw/ is exported again and every other table folder is rewritten without them."""
    from privacy.identities import resolve
    from privacy.warehouse import OWNER_COLUMNS, delete_raw
    from spark_warehouse.erase import erase_users, table_folders

    spark = built / "spark"
    with duckdb.connect(str(built / "warehouse.duckdb")) as con:
        user = con.execute(
            "select user_id from staging.stg_events where user_id like 'u%' group by 1 order by count(*) desc limit 1"
        ).fetchone()[0]
        subject = resolve(con, [user])
        delete_raw(con, subject)
        others = con.execute("select count(*) from raw.events").fetchone()[0]
        summary = export_raw(con, built)
    with_files = [folder for folder in table_folders(built) if any(folder.rglob("*.parquet"))]
    removed = erase_users(built, subject.all_ids, OWNER_COLUMNS)
    assert summary.files_removed >= 1 and removed["warehouse/staging.db/stg_events"] > 0
    assert removed["warehouse/intermediate.db/int_users"] == 1
    with duckdb.connect() as con:
        for path in sorted(spark.rglob("*.parquet")):
            if path.name.startswith((".", "_")):
                continue
            columns = con.execute(f"describe select * from '{path}'").fetchall()
            texts = [name for name, kind, *_ in columns if kind == "VARCHAR"]
            if texts:
                hits = con.execute(
                    f"select count(*) from '{path}' where {' or '.join(f'contains({name}, $u)' for name in texts)}",
                    {"u": user},
                ).fetchone()[0]
                assert hits == 0, path
        kept = con.execute(f"select count(*) from '{spark}/raw/events/*.parquet'").fetchone()[0]
    assert kept == others
    # a rewritten table keeps a file (of the other users' rows)
    assert all(any(folder.rglob("*.parquet")) for folder in with_files)
