"""The batch gate (expectations/gate.py) and the suites, on real DuckDB files and real GX validations."""

from __future__ import annotations

import pytest

from expectations import SUITES, SuiteRunner
from expectations.gate import GateSettings, run_gate
from ingestion import ingest_landing
from stores.schema import connect
from tests.conftest import event, query, settle, write_lines


def rows(prefix: str, count: int, **fields: object) -> list[dict]:
    return [event(f"{prefix}-{i}", user_id=f"u{i % 7}", **fields) for i in range(count)]


@pytest.fixture(scope="module")
def runner() -> SuiteRunner:
    return SuiteRunner()  # ephemeral context: no Data Docs needed here


def load_and_gate(settings, runner, gate_settings=None):
    summary = ingest_landing(settings)
    with connect(str(settings.warehouse_path)) as con:
        return run_gate(con, summary.batch_id, runner, gate_settings)


def test_a_clean_batch_passes_and_is_marked_passed(settings, data_dir, runner):
    write_lines(data_dir / "landing" / "a.jsonl", rows("a", 200))
    gate = load_and_gate(settings, runner)
    assert gate.passed and gate.rows_loaded == 200 and gate.suite.rows == 200
    assert {o.expectation.split("(")[0] for o in gate.suite.outcomes} >= {
        "expect_column_values_to_be_unique", "expect_column_values_to_match_regex",
    }  # fmt: skip
    assert query(data_dir, "select gate_status, count(*) from raw.load_manifest group by 1") == [("passed", 1)]
    assert query(data_dir, "select gate_status, rows_loaded from raw.batches") == [("passed", 200)]


def test_a_file_without_a_required_column_fails_the_batch_and_quarantines_its_other_files(settings, data_dir, runner):
    landing = data_dir / "landing"
    write_lines(landing / "good.jsonl", rows("g", 150))
    (landing / "broken.csv").write_text("message_id,user_id,event\nm1,u1,Signed Up\n")
    settle(landing / "broken.csv")

    gate = load_and_gate(settings, runner)

    assert not gate.passed
    assert gate.batch_problems == ["broken.csv: lacks required column(s): timestamp"]
    assert query(data_dir, "select file_name, gate_status from raw.load_manifest order by 1") == [
        ("broken.csv", "not_applicable"),
        ("good.jsonl", "quarantined"),
    ]
    [(status, detail)] = query(data_dir, "select gate_status, gate_detail from raw.batches")
    assert status == "quarantined" and "broken.csv: lacks required column(s): timestamp" in detail


def test_a_jump_in_the_share_of_nulls_fails_the_batch(settings, data_dir, runner):
    write_lines(data_dir / "landing" / "1.jsonl", rows("known", 300))
    assert load_and_gate(settings, runner).passed
    anonymous = [event(f"anon-{i}", user_id=None, anonymous_id=f"a{i}") for i in range(240)] + rows("k2", 60)
    write_lines(data_dir / "landing" / "2.jsonl", anonymous)

    gate = load_and_gate(settings, runner)

    assert gate.batch_problems == [
        "null share of user_id: 80.0% in this batch against 0.0% before (a jump of more than 25%)"
    ]
    assert gate.suite_passed  # every row is fine on its own


def test_volume_far_from_the_trailing_average_fails_the_batch(settings, data_dir, runner):
    few_batches = GateSettings(volume_min_history=2, volume_max_ratio=5, volume_min_rows=10)
    for n in range(2):
        write_lines(data_dir / "landing" / f"day{n}.jsonl", rows(f"d{n}", 20))
        assert load_and_gate(settings, runner, few_batches).passed
    write_lines(data_dir / "landing" / "spike.jsonl", rows("spike", 200))

    gate = load_and_gate(settings, runner, few_batches)

    assert gate.batch_problems == [
        "volume: 200 rows loaded is 10.00x the trailing average of 20 over the last 2 passed batches "
        "(allowed 0.05x to 5x)"
    ]


def test_micro_batches_are_not_judged_on_volume_nor_count_in_its_average(settings, data_dir, runner):
    gate_settings = GateSettings(volume_min_history=2, volume_max_ratio=5, volume_min_rows=50)
    for n in range(2):
        write_lines(data_dir / "landing" / f"export{n}.jsonl", rows(f"e{n}", 100))
        assert load_and_gate(settings, runner, gate_settings).passed
    for n in range(3):  # a collector's rotations: 1 row each, 0.01x the exports
        write_lines(data_dir / "landing" / f"spool{n}.jsonl", rows(f"s{n}", 1))
        assert load_and_gate(settings, runner, gate_settings).batch_problems == []
    write_lines(data_dir / "landing" / "export2.jsonl", rows("e2", 450))  # 4.5x the exports, 450x the spools

    assert load_and_gate(settings, runner, gate_settings).batch_problems == []

    write_lines(data_dir / "landing" / "export3.jsonl", rows("e3", 20 * 100))
    assert load_and_gate(settings, runner, gate_settings).batch_problems == [
        "volume: 2000 rows loaded is 9.23x the trailing average of 217 over the last 3 passed batches "
        "(allowed 0.05x to 5x)"
    ]


def test_each_producer_is_judged_against_its_own_trailing_average(settings, data_dir, runner):
    gate_settings = GateSettings(volume_min_history=2, volume_max_ratio=5, volume_min_rows=50)
    for n in range(2):  # a backfill: big exports at the top of the landing folder
        write_lines(data_dir / "landing" / f"export{n}.jsonl", rows(f"e{n}", 2000))
        assert load_and_gate(settings, runner, gate_settings).passed
    collector = data_dir / "landing" / "collector"
    collector.mkdir()
    for n, size in enumerate((60, 100, 80)):  # then a stream: 0.03-0.05x the exports, judged on its own
        write_lines(collector / f"events-{n}.jsonl", rows(f"c{n}", size))
        assert load_and_gate(settings, runner, gate_settings).batch_problems == []

    write_lines(collector / "events-3.jsonl", rows("c3", 1000))  # 12.5x the stream's average of 80
    write_lines(data_dir / "landing" / "export2.jsonl", rows("e2", 2100))  # 1.05x the exports: fine
    assert load_and_gate(settings, runner, gate_settings).batch_problems == [
        "volume: 1000 rows loaded from collector/ is 12.50x the trailing average of 80 over the last 3 passed "
        "batches from collector/ (allowed 0.05x to 5x)"
    ]


def test_a_row_that_slipped_past_ingestion_fails_the_suite_with_examples(settings, data_dir, runner):
    write_lines(data_dir / "landing" / "ok.jsonl", rows("ok", 10))
    summary = ingest_landing(settings)
    with connect(str(settings.warehouse_path)) as con:
        # as if an older ingestion version had let a malformed name and a negative order through
        for message_id, name in (("sneaky-1", "!!! bad name"), ("sneaky-2", "Order Completed")):
            con.execute(
                "insert into raw.events select ?, 'u1', null, 'track', ?, timestamp, received_at, "
                "'{\"revenue\": -3}', null, null, 'ok.jsonl', 99, loaded_at from raw.events limit 1",
                [message_id, name],
            )
        gate = run_gate(con, summary.batch_id, runner)

    assert not gate.passed and gate.batch_problems == []
    failures = {f.expectation.split("(")[0]: f for f in gate.suite.failures}
    assert failures["expect_column_values_to_match_regex"].examples == ["!!! bad name"]
    assert failures["expect_column_values_to_be_between"].unexpected_count == 1
    assert "raw_events suite" in query(data_dir, "select gate_detail from raw.batches")[0][0]


def test_chunks_split_by_key_so_uniqueness_holds_across_chunks(data_dir):
    small_chunks = SuiteRunner(chunk_rows=100)
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.daily_kpis as select date '2026-01-01' + cast(i as integer) as activity_date, "
            "1 as dau, 2 as wau, 3 as mau, 0.3 as stickiness, 0 as orders, 0.0 as conversion_rate from range(1000) t(i)"
        )
        clean = small_chunks.validate(con, SUITES["daily_kpis"])
        con.execute("insert into marts.daily_kpis select * from marts.daily_kpis where activity_date = '2026-03-01'")
        con.execute("update marts.daily_kpis set wau = 0 where activity_date = '2026-02-01'")
        broken = small_chunks.validate(con, SUITES["daily_kpis"])
    assert clean.success and clean.chunks == 10 and clean.rows == 1000
    failed = {f.expectation.split("(")[0]: f.unexpected_count for f in broken.failures}
    assert failed == {"expect_column_values_to_be_unique": 2, "expect_column_pair_values_a_to_be_greater_than_b": 1}
