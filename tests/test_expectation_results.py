"""The GX file project under DATA_DIR keeps a bounded history: the latest results of each suite and their pages."""

from __future__ import annotations

import duckdb
import pandas as pd

from expectations import SUITES, SuiteRunner
from expectations.runner import prune_results


def kpis(con: duckdb.DuckDBPyConnection, wau_on_day_3: int) -> None:
    con.execute("create schema if not exists marts")
    con.execute(
        "create or replace table marts.daily_kpis as select date '2026-01-01' + range::int as activity_date, "
        "1 as dau, case when range = 2 then $wau else 2 end as wau, 3 as mau, 0.5 as stickiness, "
        "0.1 as conversion_rate, 1 as orders from range(4)",
        {"wau": wau_on_day_3},
    )


def stored_runs(uncommitted, base: str) -> list[str]:
    return sorted(p.name for p in (uncommitted / base).glob("daily_kpis/*/*") if p.is_dir())


def test_each_validation_keeps_only_the_latest_results_and_pages(tmp_path):
    runner = SuiteRunner(tmp_path, keep_results=3)
    uncommitted = tmp_path / "gx" / "uncommitted"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        outcomes = []
        for run in range(5):
            kpis(con, wau_on_day_3=0 if run == 4 else 2)  # the last run breaks dau <= wau on one day
            outcomes.append(runner.validate(con, SUITES["daily_kpis"]))
            results = stored_runs(uncommitted, "validations")
            assert len(results) == min(run + 1, 3)
            assert stored_runs(uncommitted, "data_docs/local_site/validations") == results
            # each validation renders its own page at once, named by its run time
            assert [page.parent.name for page in outcomes[-1].docs_pages] == [results[-1]]
            assert all(page.exists() for page in outcomes[-1].docs_pages)

    assert [o.success for o in outcomes] == [True, True, True, True, False]
    assert [f.unexpected_count for f in outcomes[-1].failures] == [1]
    # the index is not rebuilt by each validation (it reads every stored result), only on demand
    assert not (uncommitted / "data_docs" / "local_site" / "index.html").exists()
    index = runner.build_docs_index().read_text()
    # the index links the kept results and none of the pruned ones
    assert sum(name in index for name in results) == 3
    assert index.count("validations/daily_kpis/") == 3


def test_prune_keeps_the_newest_by_run_time_and_leaves_other_suites_alone(tmp_path):
    store = tmp_path / "validations"
    stamps = ["20261201T100000.000001Z", "20261201T090000.000001Z", "20261202T000000.000001Z"]
    for stamp in stamps:
        (store / "daily_kpis" / "__none__" / stamp).mkdir(parents=True)
    (store / "stg_events" / "__none__" / stamps[1]).mkdir(parents=True)

    assert prune_results(tmp_path, "daily_kpis", keep=2) == 1
    assert sorted(p.name for p in (store / "daily_kpis" / "__none__").iterdir()) == [stamps[0], stamps[2]]
    assert (store / "stg_events" / "__none__" / stamps[1]).is_dir()
    assert prune_results(tmp_path, "daily_kpis", keep=2) == 0


def test_stg_events_names_are_snake_case_or_the_invalid_label(tmp_path):
    runner = SuiteRunner(tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema staging")
        for names, passes in ((["order_completed", "(invalid)", "page_viewed"], True), (["Bad Name", "x"], False)):
            con.execute(
                "create or replace table staging.stg_events as select 'm' || i as message_id, 'u' as user_id, "
                "name as event_name, 'track' as event_type, timestamp '2026-01-01' as event_at, "
                "date '2026-01-01' as event_date, true as is_activity, now() as staged_at, 0.0 as revenue "
                "from (select unnest($names) as name, generate_subscripts($names, 1) as i)",
                {"names": names},
            )
            outcome = runner.validate(con, SUITES["stg_events"])
            assert outcome.success is passes
            if not passes:
                [failure] = outcome.failures
                assert failure.unexpected_count == 1 and "Bad Name" in failure.examples


def test_chunks_reach_gx_typed_as_duckdb_types_them():
    """Frames come through Arrow, yet decimals arrive as doubles and dates as timestamps (as `.df()` gives them):
    a decimal just below a bound is unexpected and a date compares as a date, in one chunk and in several."""
    from expectations.runner import _chunk_frames

    with duckdb.connect() as con:
        con.execute(
            "create table t as select range as id, cast(range / 10 as decimal(18, 4)) - 0.0001 as revenue, "
            "date '2026-03-29' + range::int as day, 'x' || range as label from range(25)"
        )
        for chunks in (1, 3):
            frames = list(_chunk_frames(con, "select * from t", {}, "id", chunks))
            whole = frames[0] if chunks == 1 else pd.concat(frames).sort_values("id")
            expected = con.execute("select * from t order by id").df()
            assert [str(whole[c].dtype) for c in ("revenue", "day")] == ["float64", "datetime64[us]"]
            assert whole.reset_index(drop=True).equals(expected)
            assert (whole["revenue"] < 0).sum() == 1  # -0.0001 stays below zero, exactly as DuckDB rounds it
