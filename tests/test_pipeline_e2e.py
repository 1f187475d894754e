"""The whole graph materialised in process by Dagster on a small generated event set."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from demo_events import GeneratorConfig, Truth, generate
from tests.conftest import query

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth, dg.ExecuteInProcessResult, set]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    truth = generate(GeneratorConfig(users=300, seed=7, months=3, file_rows=4000), data_dir)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(data_dir))
        # The generator renames each finished file into place, so nothing needs to settle.
        env.setenv("SETTLE_SECONDS", "0")
        from orchestration.definitions import defs

        definitions = defs()
        job = definitions.resolve_job_def("materialize_everything")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance)
    return data_dir, truth, result, set(definitions.resolve_asset_graph().asset_check_keys)


def test_every_asset_materialises_and_every_check_passes(pipeline):
    _, _, result, check_keys = pipeline
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert {"raw/events", "staging/stg_events", "marts/cohort_retention", "marts/user_segments"} <= materialized
    evaluations = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert {evaluation.asset_check_key for evaluation in evaluations} == check_keys  # every dbt test ran
    assert all(evaluation.passed for evaluation in evaluations)


def test_charts_are_attached_to_the_marts_that_have_a_picture(pipeline):
    result = pipeline[2]
    metadata = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    for key, name in [
        ("marts/cohort_retention", "weekly_retention_heatmap"),
        ("marts/retention_curve", "weekly_retention_curves"),
        ("marts/lifecycle", "weekly_lifecycle"),
        ("marts/daily_kpis", "active_users_trend"),
    ]:
        assert metadata[key][name].value.startswith("![chart](data:image/png;base64,iVBORw0KGgo")


def test_each_check_links_its_own_data_docs_page_and_the_index_lists_them(pipeline):
    data_dir, _, result, _ = pipeline
    pages = {}
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if "data_docs" in evaluation.metadata:
                pages[evaluation.asset_check_key.name] = Path(evaluation.metadata["data_docs"].value)
    suites = ("raw_events", "stg_events", "cohort_retention", "daily_kpis")
    assert set(pages) == {f"{suite}_expectations" for suite in suites}
    assert all(page.exists() for page in pages.values())
    # the index is rebuilt once, by quality/data_docs, after the validations: it links every page
    index = (data_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    for page in pages.values():
        assert page.relative_to(page.parents[4]).as_posix() in index


def test_manifest_reconciles_with_the_generators_truth(pipeline):
    data_dir, truth = pipeline[:2]
    rows_in, loaded, duplicate, rejected = query(
        data_dir,
        "select sum(rows_in), sum(rows_loaded), sum(rows_duplicate), sum(rows_rejected) from raw.load_manifest",
    )[0]
    assert rows_in == truth.rows_written == loaded + duplicate + rejected
    assert (loaded, duplicate) == (truth.expected_unique_events, truth.expected_duplicate_rows)
    assert rejected == sum(truth.expected_rejects.values())
    # Every generated user is active at least once, so weekly cohorts together hold every user exactly once.
    cohort_users = query(
        data_dir, "select sum(cohort_size) from marts.cohort_retention where grain = 'week' and period_number = 0"
    )
    assert cohort_users == [(truth.users,)]


def _period(start: pd.Series, day: pd.Series, grain: str) -> pd.Series:
    if grain == "day":
        return (day - start).dt.days
    if grain == "week":
        return (day - start).dt.days // 7
    return (day.dt.year - start.dt.year) * 12 + day.dt.month - start.dt.month


def _truncate(day: pd.Series, grain: str) -> pd.Series:
    if grain == "day":
        return day
    if grain == "week":
        return day - pd.to_timedelta(day.dt.weekday, unit="D")
    return day.dt.to_period("M").dt.to_timestamp()


def pandas_retention(events: pd.DataFrame, as_of: pd.Timestamp, grain: str) -> set[tuple]:
    """Retention of first_ever cohorts computed independently of the SQL, straight from the definitions."""
    days = events.assign(day=events["event_at"].dt.normalize())[["user_id", "day"]].drop_duplicates()
    first_day = days.groupby("user_id")["day"].min().rename("first_day")
    days = days.join(first_day, on="user_id")
    days["cohort_start"] = _truncate(days["first_day"], grain)
    days["period_number"] = _period(days["cohort_start"], _truncate(days["day"], grain), grain)
    active = days[["user_id", "cohort_start", "period_number"]].drop_duplicates()
    sizes = active.groupby("cohort_start")["user_id"].nunique()
    last = active.groupby(["cohort_start", "user_id"])["period_number"].max().reset_index()
    as_of_period = _truncate(pd.Series([as_of.normalize()]), grain).iloc[0]
    cells = set()
    for cohort_start, size in sizes.items():
        horizon = int(_period(pd.Series([cohort_start]), pd.Series([as_of_period]), grain).iloc[0])
        for k in range(horizon + 1):
            retained = int(((active["cohort_start"] == cohort_start) & (active["period_number"] == k)).sum())
            unbounded = int(((last["cohort_start"] == cohort_start) & (last["period_number"] >= k)).sum())
            end = cohort_start + (pd.DateOffset(months=k + 1) if grain == "month" else pd.Timedelta(
                days=(k + 1) * (7 if grain == "week" else 1)))  # fmt: skip
            cells.add((grain, cohort_start.date(), k, int(size), retained, unbounded, bool(end <= as_of)))
    return cells


def test_an_independent_pandas_computation_agrees_with_the_mart_to_the_row(pipeline):
    data_dir = pipeline[0]
    events = pd.DataFrame(
        query(data_dir, "select user_id, event_at from staging.stg_events where is_activity"),
        columns=["user_id", "event_at"],
    )
    as_of = pd.Timestamp(query(data_dir, "select max(event_at) from staging.stg_events")[0][0])
    for grain in ("day", "week", "month"):
        mart = set(
            query(
                data_dir,
                "select grain, cohort_start, period_number, cohort_size, retained_users, retained_users_unbounded, "
                "is_complete from marts.cohort_retention where grain = ?",
                [grain],
            )
        )
        expected = pandas_retention(events, as_of, grain)
        assert len(expected) >= 6 and mart == expected, grain


def test_the_run_publishes_every_mart_to_the_serving_copy_and_parquet(pipeline):
    data_dir, _, result = pipeline[:3]
    warehouse_counts = {
        f"{schema}.{table}": query(data_dir, f"select count(*) from {schema}.{table}")[0][0]
        for schema, table in query(
            data_dir, "select schema_name, table_name from duckdb_tables() where schema_name in ('marts', 'ml')"
        )
    }
    serving = data_dir / "serving.duckdb"
    import duckdb

    with duckdb.connect(str(serving), read_only=True) as con:
        every_table = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        published = {
            f"{schema}.{table}": con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            for schema, table in every_table
            if schema in ("marts", "ml")
        }
        manifest_files = con.execute("select count(*) from ops.load_manifest").fetchone()[0]
    # 34 marts (5 of them ML: features, behaviour mix, churn snapshots, cluster profiles, product interactions;
    # data_health_flags; the experiments' metric results, decisions and assignments; funnel conversion and
    # drop-offs; the three path marts) beside the ml.* tables, and the 7 the dashboard reads its definitions from
    # (kpi_periods, lifecycle_periods, stickiness_periods, retention_curve_cells[_by_dimension], engagement_bands,
    # cluster_feature_index)
    assert published == warehouse_counts and sum(name.startswith("marts.") for name in published) == 34 + 7
    # the recommendation model trained on the demo and every user got recommendations
    assert published["ml.recommendations"] > 0 and published["ml.popular_products"] > 0
    # the dashboard's data-health tables ride along in schema ops
    assert {f"{s}.{t}" for s, t in every_table if s == "ops"} == {
        "ops.load_manifest", "ops.batches", "ops.rejects_by_file_reason",
    }  # fmt: skip
    assert manifest_files == query(data_dir, "select count(*) from raw.load_manifest")[0][0]
    assert sorted(p.stem for p in (data_dir / "exports" / "marts").glob("*.parquet")) == sorted(
        name.split(".")[1] for name in warehouse_counts if name.startswith("marts.")
    )
    [materialization] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "serving/serving_copy"
    ]
    assert materialization.materialization.metadata["seconds_since_latest_load"].value >= 0


def test_every_path_the_run_leaves_in_data_dir_is_registered(pipeline):
    from stores import store_for_path, unregistered_paths

    data_dir = pipeline[0]
    assert unregistered_paths(data_dir) == []
    # the run made the stores an erasure walk must reach, and each resolves to its own entry
    for path, pattern in [
        ("warehouse.duckdb", "warehouse.duckdb"),
        ("serving.duckdb", "serving.duckdb"),
        ("published/current", "published/current"),
        ("mlflow.db", "mlflow.db"),
    ]:
        assert (data_dir / path).exists() and store_for_path(path).pattern == pattern
    version = (data_dir / "published" / "current").resolve().name
    assert store_for_path(f"published/{version}/exports/marts/user_segments.parquet").holds_personal_data
    assert list((data_dir / "activation").glob("*/*.jsonl"))  # audience exports: covered here, alerts in test_stores


def test_every_table_of_the_warehouse_and_the_serving_copy_is_registered(pipeline):
    import duckdb

    from stores import unregistered_tables

    data_dir = pipeline[0]
    for database in ("warehouse", "serving"):
        with duckdb.connect(str(data_dir / f"{database}.duckdb"), read_only=True) as con:
            assert unregistered_tables(con, database) == [], database


def test_the_registered_user_columns_are_the_columns_the_real_tables_have(pipeline):
    """The dbt rule (schema yml columns) and the hand-listed ids against the columns DuckDB reports."""
    import duckdb

    from stores import table_stores
    from stores.registry import USER_COLUMNS

    data_dir = pipeline[0]
    for database in ("warehouse", "serving"):
        with duckdb.connect(str(data_dir / f"{database}.duckdb"), read_only=True) as con:
            columns: dict[str, set[str]] = {}
            for schema, table, column in con.execute(
                "select schema_name, table_name, column_name from duckdb_columns() "
                "where database_name = current_database()"
            ).fetchall():
                columns.setdefault(f"{schema}.{table}", set()).add(column)
        for store in table_stores():
            if store.database != database or store.table not in columns:
                continue
            ids = columns[store.table] & set(USER_COLUMNS)
            assert set(store.user_columns) <= columns[store.table], store.table
            if ids:
                assert store.holds_personal_data, store.table
            if store.owner in ("dbt", "serving") and not store.table.startswith("ops."):
                assert set(store.user_columns) == ids, store.table
