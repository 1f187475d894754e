"""The uniqueness tests on message_id read only what the latest run wrote, and still catch what it duplicated."""

from __future__ import annotations

import duckdb
import pytest

from ingestion import ingest_landing
from tests.conftest import event, run_dbt, write_lines

pytestmark = pytest.mark.slow


def duplicate_fails(data_dir, statement: str, selection: str, test_name: str) -> None:
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(statement)
    with pytest.raises(AssertionError) as failure:
        run_dbt(data_dir, "test", "--select", selection)
    assert f"FAIL 1 {test_name}" in str(failure.value)


@pytest.fixture
def staged(settings, data_dir):
    write_lines(data_dir / "landing" / "a.jsonl", [event(f"m{i}", f"u{i % 3}") for i in range(6)])
    ingest_landing(settings)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("update raw.load_manifest set gate_status = 'passed'")
        con.execute(
            "insert into raw.batches select distinct batch_id, now(), 1, 6, 6, 'passed', null, now() "
            "from raw.load_manifest"
        )
    run_dbt(data_dir, "build", "--select", "stg_events")
    return data_dir


def test_a_new_row_repeating_an_old_message_id_fails_staging(staged):
    duplicate_fails(
        staged,
        "insert into staging.stg_events select * replace (staged_at + interval 1 second as staged_at) "
        "from staging.stg_events where message_id = 'm1'",
        "stg_events",
        "unique_in_new_rows_stg_events_message_id__staged_at",
    )


def test_a_row_of_the_latest_batch_repeating_a_message_id_fails_the_source(staged):
    duplicate_fails(
        staged,
        "insert into raw.events select * from raw.events where message_id = 'm2'",
        "source:raw.events",
        "source_unique_in_new_rows_raw_events_message_id",
    )


def test_copies_written_by_another_path_keep_the_earliest_received_one(settings, data_dir):
    """Ingestion drops repeated ids; rows written to raw.events another way are deduplicated by staging, which
    ranks only the ids seen more than once: the earliest received copy wins, then the earlier file and line."""
    write_lines(data_dir / "landing" / "a.jsonl", [event(f"m{i}", f"u{i}") for i in range(3)])
    ingest_landing(settings)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("update raw.load_manifest set gate_status = 'passed'")
        copies = [("early", "b.jsonl", 2, "- interval 1 hour"), ("late", "b.jsonl", 1, "+ interval 1 hour"),
                  ("tie, later line", "c.jsonl", 5, "- interval 2 hour"),
                  ("tie, earlier line", "c.jsonl", 4, "- interval 2 hour")]  # fmt: skip
        for name, file_name, line, shift in copies:
            con.execute(
                f"insert into raw.events select * replace (? as event, ? as source_file, ? as source_line, "
                f"received_at {shift} as received_at) from raw.events where message_id = ?",
                [name, file_name, line, "m1" if name in ("early", "late") else "m2"],
            )
    run_dbt(data_dir, "build", "--select", "stg_events")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        kept = dict(con.execute("select message_id, event_name_as_sent from staging.stg_events").fetchall())
    assert sorted(kept) == ["m0", "m1", "m2"]
    assert (kept["m1"], kept["m2"]) == ("early", "tie, earlier line")
