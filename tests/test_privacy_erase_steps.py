"""privacy.erase on a hand-made warehouse (ingestion only, no dbt): landing files of every format rewritten, the
manifest kept true, raw rows renumbered, suppression and ledger; the same with pseudonymised ids."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.loader import ingest_landing
from privacy import ledger
from privacy.erase import erase
from privacy.scan import scan
from privacy.suppression import read_hashes
from settings import load
from tests.conftest import event, query, settle, write_lines

KEY = "k" * 40


def subject_hash(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), f"subject\0{value}".encode(), hashlib.sha256).hexdigest()


def pseudonym(value: str) -> str:
    return hmac.new(KEY.encode(), f"pseudonym\0{value}".encode(), hashlib.sha256).hexdigest()


def build_landing(landing: Path) -> None:
    """alice (with anonymous id dev-a, first seen with her) in every format, as loaded, anonymous-only, duplicate and
    rejected rows; bob shares dev-a later (a shared device: his row stays his)."""
    write_lines(
        landing / "a.jsonl",
        [
            event("m1", "alice", anonymous_id="dev-a"),  # line 1: loaded
            event("m2", None, anonymous_id="dev-a"),  # line 2: loaded, stitched to alice
            event("m3", "bob"),  # line 3
            event("m4", "alice", timestamp="2099-01-01T00:00:00Z"),  # line 4: rejected (future)
            event("m1", "alice", anonymous_id="dev-a"),  # line 5: duplicate of line 1
            event("m5", "bob", anonymous_id="dev-a", timestamp="2026-01-06T10:00:00Z"),  # line 6: bob's
        ],
    )
    (landing / "b.csv").write_text(
        "message_id,user_id,anonymous_id,type,event,timestamp\n"
        "m6,alice,,track,Product Viewed,2026-01-05T10:00:00Z\n"
        "m7,bob,,track,Product Viewed,2026-01-05T10:00:00Z\n"
    )
    settle(landing / "b.csv")
    pq.write_table(
        pa.table(
            {
                "message_id": ["m8", "m9"],
                "user_id": ["alice", "carol"],
                "type": ["track", "track"],
                "event": ["Product Viewed", "Product Viewed"],
                "timestamp": ["2026-01-05T10:00:00Z", "2026-01-05T10:00:00Z"],
            }
        ),
        landing / "c.parquet",
    )
    settle(landing / "c.parquet")
    write_lines(landing / "d.jsonl.gz", [event("m10", "alice"), event("m11", "bob")], compress=True)


@pytest.fixture
def environ(data_dir: Path) -> dict[str, str]:
    return {"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", "PRIVACY_KEY": KEY}


def manifest(data_dir: Path) -> dict[str, tuple]:
    rows = query(
        data_dir,
        "select file_name, rows_in, rows_loaded, rows_duplicate, rows_rejected, rows_erased from raw.load_manifest",
    )
    return {row[0]: row[1:] for row in rows}


def test_erasure_rewrites_every_format_keeps_the_manifest_true_and_renumbers_what_stays(data_dir, environ):
    build_landing(data_dir / "landing")
    settings = load(environ)
    ingest_landing(settings.ingest)
    assert manifest(data_dir)["a.jsonl"] == (6, 4, 1, 1, 0)

    report = erase(settings, ["alice"])

    assert report.anonymous_ids == 1
    assert manifest(data_dir) == {
        "a.jsonl": (6, 2, 0, 0, 4),
        "b.csv": (2, 1, 0, 0, 1),
        "c.parquet": (2, 1, 0, 0, 1),
        "d.jsonl.gz": (2, 1, 0, 0, 1),
    }
    kept = [json.loads(line)["message_id"] for line in (data_dir / "landing" / "a.jsonl").read_text().splitlines()]
    assert kept == ["m3", "m5"]
    assert (data_dir / "landing" / "b.csv").read_text().splitlines()[1].startswith("m7,bob")
    assert pq.read_table(data_dir / "landing" / "c.parquet")["message_id"].to_pylist() == ["m9"]
    lines = gzip.decompress((data_dir / "landing" / "d.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line)["message_id"] for line in lines] == ["m11"]
    # each row left in raw.events names its line in the rewritten file
    assert sorted(query(data_dir, "select source_file, source_line, message_id from raw.events")) == [
        ("a.jsonl", 1, "m3"),
        ("a.jsonl", 2, "m5"),
        ("b.csv", 2, "m7"),
        ("c.parquet", 1, "m9"),
        ("d.jsonl.gz", 1, "m11"),
    ]
    assert query(data_dir, "select count(*) from raw.events_rejected") == [(0,)]
    # bob's event from the shared device keeps its anonymous id: it is his
    assert query(data_dir, "select user_id, anonymous_id from raw.events where message_id = 'm5'") == [("bob", "dev-a")]

    # the files are known as they are now: a second ingestion loads nothing
    assert ingest_landing(settings.ingest).files == []
    assert read_hashes(settings.privacy.suppression_path) == {subject_hash("alice"), subject_hash("dev-a")}
    entries = list(ledger.entries(settings.privacy.ledger_path))
    assert [entry["event"] for entry in entries] == ["requested", "finished"]
    assert entries[1]["users"] == [subject_hash("alice")]
    assert entries[1]["removed"]["landing files"] == {"files_scanned": 4, "files_rewritten": 4, "rows_removed": 7}
    assert "alice" not in settings.privacy.ledger_path.read_text()
    # the warehouse file was rewritten: no freed block keeps the deleted rows
    assert [f for f in scan(data_dir, ["alice"]) if f.path.startswith("warehouse")] == []


def test_later_events_of_an_erased_user_are_dropped_and_cut_out_of_their_file(data_dir, environ):
    build_landing(data_dir / "landing")
    settings = load(environ)
    ingest_landing(settings.ingest)
    erase(settings, ["alice"])

    later = write_lines(
        data_dir / "landing" / "later.jsonl",
        [event("m20", "alice"), event("m21", None, anonymous_id="dev-a"), event("m22", "carol")],
    )
    summary = ingest_landing(settings.ingest)

    assert [(r.file_name, r.rows_in, r.rows_loaded, r.rows_erased) for r in summary.files] == [("later.jsonl", 3, 1, 2)]
    assert [json.loads(line)["message_id"] for line in later.read_text().splitlines()] == ["m22"]
    assert query(data_dir, "select source_line from raw.events where message_id = 'm22'") == [(1,)]
    assert scan(data_dir, ["alice", "dev-a"]) == [
        f
        for f in scan(data_dir, ["alice", "dev-a"])
        if f.value == "dev-a"  # only bob's shared-device rows
    ]


def test_a_second_erasure_of_the_same_user_removes_nothing_and_is_recorded(data_dir, environ):
    build_landing(data_dir / "landing")
    settings = load(environ)
    ingest_landing(settings.ingest)
    erase(settings, ["alice"])

    again = erase(settings, ["alice"])

    assert again.removed["landing files"]["rows_removed"] == 0
    assert again.removed["warehouse tables"] == {}
    assert "warehouse.duckdb" not in again.removed  # nothing removed: the file is not rewritten again
    assert len([e for e in ledger.entries(settings.privacy.ledger_path) if e["event"] == "finished"]) == 2


def test_with_pseudonymised_ids_the_clear_ids_are_erased_from_files_and_their_pseudonyms_from_tables(data_dir, environ):
    build_landing(data_dir / "landing")
    settings = load({**environ, "PSEUDONYMISE_IDS": "true"})
    ingest_landing(settings.ingest)
    assert query(data_dir, "select count(*) from raw.events where user_id = ?", [pseudonym("alice")]) == [(4,)]

    erase(settings, ["alice"])

    assert query(data_dir, "select count(*) from raw.events where user_id = ?", [pseudonym("alice")]) == [(0,)]
    assert query(data_dir, "select count(*) from raw.events where anonymous_id = ?", [pseudonym("dev-a")]) == [(1,)]
    assert manifest(data_dir)["a.jsonl"] == (6, 2, 0, 0, 4)
    # the clear anonymous id, read from the files, is suppressed too
    assert read_hashes(settings.privacy.suppression_path) == {subject_hash("alice"), subject_hash("dev-a")}
    assert [f for f in scan(data_dir, ["alice"]) if not f.path.startswith("privacy/")] == []


def test_rows_kept_from_a_file_that_lost_suppressed_lines_at_load_carry_their_new_line_numbers(data_dir, environ):
    # Found by the end-to-end test: ingestion cut the suppressed lines out of the file but recorded the old numbers,
    # so a later erasure of carol (line 2 of the rewritten file) deleted bob's row, recorded at line 2.
    landing = data_dir / "landing"
    settings = load(environ)
    write_lines(landing / "a.jsonl", [event("m0", "zed")])
    ingest_landing(settings.ingest)
    erase(settings, ["gone"])  # on the suppression list from now on
    write_lines(landing / "b.jsonl", [event("m1", "gone"), event("m2", "bob"), event("m3", "carol")])
    # a CSV record spanning two physical lines after the suppressed one: numbers count physical lines
    (landing / "c.csv").write_text(
        "message_id,user_id,type,event,timestamp,properties\n"
        "m4,gone,track,Order Completed,2026-01-05T10:00:00Z,\n"
        'm5,bob,track,Order Completed,2026-01-05T10:00:00Z,"{""note"":\n""two lines""}"\n'
        "m6,carol,track,Order Completed,2026-01-05T10:00:00Z,\n"
    )
    settle(landing / "c.csv")
    ingest_landing(settings.ingest)
    lines = "select source_file, source_line, message_id from raw.events where source_file <> 'a.jsonl' order by 1, 2"
    assert query(data_dir, lines) == [
        ("b.jsonl", 1, "m2"),
        ("b.jsonl", 2, "m3"),
        ("c.csv", 3, "m5"),
        ("c.csv", 4, "m6"),
    ]

    erase(settings, ["carol"])

    assert query(data_dir, lines) == [("b.jsonl", 1, "m2"), ("c.csv", 3, "m5")]
    assert manifest(data_dir)["b.jsonl"] == (3, 1, 0, 0, 2) and manifest(data_dir)["c.csv"] == (3, 1, 0, 0, 2)
