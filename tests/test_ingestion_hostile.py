"""Hostile landing files: each is planted in a real landing folder and loaded into a real DuckDB file.

Every case asserts the same contract: the bad part is a rejected row with a reason naming it (or the file is
flagged), the good rows of the same file load, rows in = loaded + duplicate + rejected, and the other files of the
run load as well.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import replace
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from event_contract import MIN_EVENT_TIME, MIN_EVENT_TIME_REASON
from ingestion import FileResult, IngestSettings, ingest_landing
from ingestion.readers import FileReader
from stores.schema import connect
from tests.conftest import event, query, settle, write_lines

BOM = b"\xef\xbb\xbf"
SMALL_LINE = 1_000
LONG_REASON = f"line of more than {SMALL_LINE} bytes is over max_line_bytes ({SMALL_LINE})"


def line(row: dict) -> bytes:
    return orjson.dumps(row) + b"\n"


def put(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return settle(path)


def by_file(results: list[FileResult]) -> dict[str, FileResult]:
    assert all(r.reconciles for r in results), [r for r in results if not r.reconciles]
    return {r.file_name: r for r in results}


def rejected(data_dir: Path, file_name: str) -> dict[int, tuple[str, str | None]]:
    rows = query(
        data_dir,
        "select line_number, reason, raw_line from raw.events_rejected where source_file = ?",
        [file_name],
    )
    return {number: (reason, raw) for number, reason, raw in rows}


def loaded_ids(data_dir: Path, file_name: str | None = None) -> set[str]:
    sql = "select message_id from raw.events" + (" where source_file = ?" if file_name else "")
    return {row[0] for row in query(data_dir, sql, [file_name] if file_name else [])}


def manifest(data_dir: Path) -> dict[str, tuple]:
    rows = query(
        data_dir,
        "select file_name, status, rows_in, rows_loaded + rows_duplicate + rows_rejected, attempts, detail "
        "from raw.load_manifest",
    )
    return {row[0]: row[1:] for row in rows}


def clean_file(landing: Path, name: str = "zz_clean.jsonl") -> Path:
    return write_lines(landing / name, [event("clean-1"), event("clean-2")])


# -- 1. maximum line length ----------------------------------------------------------------------------------


def test_an_oversized_jsonl_line_is_one_short_reject_and_the_next_lines_load(settings, data_dir):
    landing = data_dir / "landing"
    big = event("big", properties={"blob": "x" * 5_000_000})
    write_lines(landing / "long.jsonl", [event("before"), big, event("after"), event("big2", pad="y" * 1_200_000)])
    clean_file(landing)

    files = by_file(ingest_landing(replace(settings, max_line_bytes=SMALL_LINE)).files)

    result = files["long.jsonl"]
    assert (result.status, result.rows_in, result.rows_loaded, result.rows_rejected) == ("loaded", 4, 2, 2)
    got = rejected(data_dir, "long.jsonl")
    assert {number: reason for number, (reason, _) in got.items()} == {2: LONG_REASON, 4: LONG_REASON}
    assert got[2][1] == line(big)[:1000].decode() and len(got[4][1]) == 1000
    assert loaded_ids(data_dir, "long.jsonl") == {"before", "after"}
    assert files["zz_clean.jsonl"].rows_loaded == 2


def test_a_long_last_line_without_newline_and_lines_across_blocks(settings, data_dir):
    """Long lines at every position of a block: first, between short ones, spanning blocks, last without newline."""
    landing = data_dir / "landing"
    short = [line(event(f"s{i}")) for i in range(5)]
    payload = b"z" * 3000 + b"\n" + short[0] + short[1] + b"q" * 1500 + b"\n" + short[2] + b"w" * 2500
    put(landing / "mixed.jsonl", payload)

    [result] = ingest_landing(replace(settings, max_line_bytes=SMALL_LINE)).files

    assert (result.rows_in, result.rows_loaded, result.rows_rejected) == (6, 3, 3) and result.reconciles
    got = rejected(data_dir, "mixed.jsonl")
    assert {n: r for n, (r, _) in got.items()} == {1: LONG_REASON, 4: LONG_REASON, 6: LONG_REASON}
    assert got[6][1] == "w" * 1000


def test_a_gzip_inflating_to_one_huge_line_is_read_in_bounded_memory(settings, data_dir):
    """64 MiB in one line from a small gzip file: one short reject, and the good lines after it load."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b'{"message_id": "huge", "user_id": "u1", "pad": "')]
    parts += [compressor.compress(b"x" * (1 << 20)) for _ in range(64)]
    parts += [compressor.compress(b'"}\n' + line(event("after-1")) + line(event("after-2"))), compressor.flush()]
    put(data_dir / "landing" / "huge.jsonl.gz", b"".join(parts))

    [result] = ingest_landing(settings).files

    assert (result.status, result.rows_in, result.rows_loaded, result.rows_rejected) == ("loaded", 3, 2, 1)
    [(reason, raw)] = rejected(data_dir, "huge.jsonl.gz").values()
    assert reason == "line of more than 4194304 bytes is over max_line_bytes (4194304)"
    assert raw.startswith('{"message_id": "huge"') and len(raw.encode()) == 1000
    assert loaded_ids(data_dir) == {"after-1", "after-2"}


def test_an_oversized_csv_record_is_one_reject_and_the_rest_of_the_file_loads(settings, data_dir):
    landing = data_dir / "landing"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["message_id", "user_id", "type", "event", "timestamp", "properties"])
    writer.writerow(["c1", "u1", "track", "Signed Up", "2026-01-05T10:00:00Z", "{}"])
    writer.writerow(["c2", "u1", "track", "Signed Up", "2026-01-05T10:00:00Z", '{"a": "' + "x" * 3_000_000 + '"}'])
    # a quoted field of many short lines: the record, not each line, is over the bound
    writer.writerow(["c3", "u1", "track", "Signed Up", "2026-01-05T10:00:00Z", "line\n" * 400])
    writer.writerow(["c4", "u1", "track", "Signed Up", "2026-01-05T10:00:00Z", "{}"])
    put(landing / "long.csv", buffer.getvalue().encode())
    clean_file(landing)

    files = by_file(ingest_landing(replace(settings, max_line_bytes=SMALL_LINE)).files)

    result = files["long.csv"]
    assert result.rows_rejected >= 2 and result.rows_loaded == 2
    got = rejected(data_dir, "long.csv")
    assert got[3][0] == LONG_REASON and got[3][1].startswith("c2,u1,track") and len(got[3][1]) <= 1000
    assert sum(1 for reason, _ in got.values() if reason == LONG_REASON) == 2
    assert loaded_ids(data_dir, "long.csv") == {"c1", "c4"}
    assert files["zz_clean.jsonl"].rows_loaded == 2


def test_a_parquet_row_with_a_huge_cell_is_rejected_and_a_huge_row_group_damages_the_file(settings, data_dir):
    landing = data_dir / "landing"
    ids, props = ["p1", "p2", "p3"], ["{}", '{"a": "' + "x" * 50_000 + '"}', "{}"]
    table = pa.table(
        {"message_id": ids, "user_id": ["u"] * 3, "event": ["Signed Up"] * 3,
         "timestamp": ["2026-01-05T10:00:00Z"] * 3, "properties": props}
    )  # fmt: skip
    pq.write_table(table, landing / "cell.parquet")
    settle(landing / "cell.parquet")

    [cell] = ingest_landing(replace(settings, max_line_bytes=SMALL_LINE * 10)).files

    assert (cell.status, cell.rows_loaded, cell.rows_rejected) == ("loaded", 2, 1)
    [(reason, raw)] = rejected(data_dir, "cell.parquet").values()
    assert reason == "row of more than 10000 bytes is over max_line_bytes (10000)" and len(raw) <= 1000
    assert raw.startswith('{"message_id":"p2"')
    pq.write_table(table, landing / "group.parquet", row_group_size=1)
    settle(landing / "group.parquet")
    clean_file(landing)

    files = by_file(ingest_landing(replace(settings, max_row_group_bytes=40_000)).files)

    assert files["zz_clean.jsonl"].rows_loaded == 2
    group = files["group.parquet"]
    assert group.status == "damaged" and (group.rows_loaded, group.rows_rejected) == (0, 1)  # p1 was loaded before
    assert "row group 1 of" in group.detail and "max_row_group_bytes (40000)" in group.detail


def test_the_raw_text_of_any_rejected_row_is_capped(settings, data_dir):
    """A 3 MB line under max_line_bytes that is rejected for another reason keeps only its first bytes."""
    bad = b'{"message_id": "m1", "user_id": "u1", "timestamp": "nope", "pad": "' + b"x" * 3_000_000 + b'"}'
    wide = '{"message_id": "m2", "user_id": "u1", "timestamp": "nope", "pad": "' + "é" * 100_000 + '"}'
    write_lines(data_dir / "landing" / "wide.jsonl", [bad, wide, event("ok")])

    [result] = ingest_landing(replace(settings, max_raw_line_bytes=4096)).files

    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    got = rejected(data_dir, "wide.jsonl")
    assert got[1] == ("unparseable timestamp: nope", bad[:4096].decode())
    assert got[2][0] == "unparseable timestamp: nope" and len(got[2][1].encode()) <= 4096
    assert got[2][1].startswith('{"message_id": "m2"')


# -- 2. maximum inflated size ----------------------------------------------------------------------------------


def test_a_gzip_inflating_past_max_inflated_bytes_ends_with_one_reject(settings, data_dir):
    landing = data_dir / "landing"
    payload = b"".join(line(event(f"m{i}")) for i in range(1000))
    put(landing / "bomb.jsonl.gz", gzip.compress(payload, mtime=0))
    clean_file(landing)

    files = by_file(ingest_landing(replace(settings, max_inflated_bytes=50_000)).files)

    result = files["bomb.jsonl.gz"]
    complete = payload[:50_000].count(b"\n")
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("damaged", complete, 1)
    assert result.detail == (
        f"file not read past line {complete}: inflates to more than 50000 bytes (max_inflated_bytes); "
        "the rest is not read"
    )
    [(line_number, (reason, _))] = rejected(data_dir, "bomb.jsonl.gz").items()
    assert line_number == complete + 1 and reason == result.detail
    assert files["zz_clean.jsonl"].rows_loaded == 2


# -- 3. gzip members and trailing garbage ------------------------------------------------------------------------


def test_a_second_gzip_member_loads_and_trailing_garbage_is_a_damaged_tail(settings, data_dir):
    landing = data_dir / "landing"
    first = gzip.compress(line(event("a1")) + line(event("a2")), mtime=0)
    second = gzip.compress(line(event("b1")), mtime=0)
    put(landing / "members.jsonl.gz", first + second)
    put(landing / "garbage.jsonl.gz", gzip.compress(line(event("c1")) + line(event("c2")), mtime=0) + b"not gzip")
    put(landing / "one_byte.jsonl.gz", gzip.compress(line(event("d1")) + line(event("d2")), mtime=0) + b"\x1f")
    clean_file(landing)

    files = by_file(ingest_landing(settings).files)

    assert (files["members.jsonl.gz"].status, files["members.jsonl.gz"].rows_loaded) == ("loaded", 3)
    for name in ("garbage.jsonl.gz", "one_byte.jsonl.gz"):
        result = files[name]
        assert (result.status, result.rows_loaded, result.rows_rejected) == ("damaged", 2, 1), name
        assert result.detail == (
            "file damaged after line 2: bytes after the end of the gzip data are not another gzip member"
        )
    assert loaded_ids(data_dir, "garbage.jsonl.gz") == {"c1", "c2"}
    assert loaded_ids(data_dir, "members.jsonl.gz") == {"a1", "a2", "b1"}
    assert files["zz_clean.jsonl"].rows_loaded == 2


# -- 4. byte-order marks --------------------------------------------------------------------------------------


def test_a_byte_order_mark_at_the_start_of_a_file_is_dropped(settings, data_dir):
    landing = data_dir / "landing"
    put(landing / "bom.jsonl", BOM + line(event("j1")) + line(event("j2")))
    put(landing / "bom.jsonl.gz", gzip.compress(BOM + line(event("g1")), mtime=0))
    put(landing / "bom.csv", BOM + b"message_id,user_id,event,timestamp\nc1,u1,Signed Up,2026-01-05T10:00:00Z\n")
    put(landing / "bom_crlf.csv.gz", gzip.compress(BOM + b"message_id,anonymous_id,type,timestamp\r\n"
                                                   b"c2,a1,page,2026-01-05T10:00:00Z\r\n", mtime=0))  # fmt: skip

    files = by_file(ingest_landing(settings).files)

    assert {name: (r.status, r.rows_loaded, r.rows_rejected) for name, r in files.items()} == {
        "bom.jsonl": ("loaded", 2, 0),
        "bom.jsonl.gz": ("loaded", 1, 0),
        "bom.csv": ("loaded", 1, 0),
        "bom_crlf.csv.gz": ("loaded", 1, 0),
    }


# -- 5. symlinks and folders ----------------------------------------------------------------------------------


def test_symlinks_are_never_followed_and_folders_are_walked(settings, data_dir, tmp_path, caplog):
    landing = data_dir / "landing"
    outside = tmp_path / "outside"
    write_lines(outside / "secret.jsonl", [event("leak", user_id="root:x:0:0")])
    (landing / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (landing / "linked_folder").symlink_to(outside, target_is_directory=True)
    (landing / "x.jsonl").mkdir()
    write_lines(landing / "x.jsonl" / "inner.jsonl", [event("inner")])
    (landing / "empty.jsonl").mkdir()
    os.mkfifo(landing / "pipe.jsonl")
    clean_file(landing)

    summary = ingest_landing(settings)

    assert sorted(by_file(summary.files)) == ["x.jsonl/inner.jsonl", "zz_clean.jsonl"]
    assert summary.symlinks_skipped == ["link.jsonl", "linked_folder"]
    assert "2 symlink(s) in the landing folder, not followed and not loaded" in caplog.text
    assert "leak" not in loaded_ids(data_dir)
    assert query(data_dir, "select count(*) from raw.events_rejected") == [(0,)]
    assert ingest_landing(settings).files == []


def test_a_file_swapped_for_a_symlink_after_discovery_is_not_read(settings, data_dir, tmp_path):
    """The race between the check and the open: O_NOFOLLOW makes the open fail, the file fails alone."""
    landing = data_dir / "landing"
    write_lines(tmp_path / "secret.jsonl", [event("leak")])
    write_lines(landing / "a.jsonl", [event("a1")])
    write_lines(landing / "sub" / "b.jsonl", [event("b1")])
    clean_file(landing)

    def swap(file_name: str, rows: int) -> None:
        if file_name == "a.jsonl":
            target = landing / "sub" / "b.jsonl"
            target.unlink()
            target.symlink_to(tmp_path / "secret.jsonl")

    files = by_file(ingest_landing(settings, on_batch=swap).files)

    assert files["a.jsonl"].rows_loaded == 1 and files["zz_clean.jsonl"].rows_loaded == 2
    swapped = files["sub/b.jsonl"]
    assert swapped.status == "failed" and "Too many levels of symbolic links" in swapped.detail
    assert "leak" not in loaded_ids(data_dir)


# -- 6. per-file isolation --------------------------------------------------------------------------------------


def test_a_failing_file_is_retried_then_quarantined_until_its_manifest_row_is_deleted(settings, data_dir):
    landing = data_dir / "landing"
    write_lines(landing / "a_good.jsonl", [event("g1")])
    write_lines(landing / "b_bad.jsonl", [event("b1"), event("b2")])
    attempts: list[str] = []

    def explode(file_name: str, rows: int) -> None:
        if file_name == "b_bad.jsonl":
            attempts.append(file_name)
            raise MemoryError("Out of Memory Error: could not allocate block")

    first = by_file(ingest_landing(settings, on_batch=explode).files)
    assert first["a_good.jsonl"].rows_loaded == 1
    assert (first["b_bad.jsonl"].status, first["b_bad.jsonl"].rows_in) == ("failed", 0)
    write_lines(landing / "c_later.jsonl", [event("c1")])
    second = by_file(ingest_landing(settings, on_batch=explode).files)
    assert sorted(second) == ["b_bad.jsonl", "c_later.jsonl"] and second["b_bad.jsonl"].attempts == 2
    third = by_file(ingest_landing(settings, on_batch=explode).files)
    assert third["b_bad.jsonl"].status == "quarantined" and third["b_bad.jsonl"].attempts == 3
    assert "not tried again until its row in raw.load_manifest is deleted" in third["b_bad.jsonl"].detail
    os.utime(landing / "b_bad.jsonl")  # even a new time does not bring it back
    settle(landing / "b_bad.jsonl", 30)
    assert ingest_landing(settings, on_batch=explode).files == [] and len(attempts) == 3

    status, rows_in, accounted, tries, detail = manifest(data_dir)["b_bad.jsonl"]
    assert (status, rows_in, accounted, tries) == ("quarantined", 0, 0, 3)
    assert "MemoryError: Out of Memory Error" in detail
    assert loaded_ids(data_dir) == {"g1", "c1"}

    with connect(str(settings.warehouse_path)) as con:  # releasing it, as the README says
        con.execute("delete from raw.load_manifest where file_name = ? and status = 'quarantined'", ["b_bad.jsonl"])
    [released] = ingest_landing(settings).files
    assert (released.file_name, released.status, released.rows_loaded) == ("b_bad.jsonl", "loaded", 2)
    assert query(data_dir, "select count(*) from raw.load_manifest where file_name = 'b_bad.jsonl'") == [(1,)]


def test_a_real_duckdb_out_of_memory_fails_one_file_and_the_others_load(settings, data_dir):
    landing = data_dir / "landing"
    write_lines(landing / "a_small.jsonl", [event("s1")])
    many = [event(f"m{i}", properties={"text": f"{i}-" + "y" * 900}) for i in range(40_000)]
    write_lines(landing / "b_big.jsonl", many)
    write_lines(landing / "c_small.jsonl", [event("s2")])

    files = by_file(ingest_landing(replace(settings, memory_limit="24MB")).files)

    assert files["a_small.jsonl"].rows_loaded == 1 and files["c_small.jsonl"].rows_loaded == 1
    big = files["b_big.jsonl"]
    assert big.status == "failed" and "OutOfMemory" in big.detail, big.detail
    assert not loaded_ids(data_dir, "b_big.jsonl")
    [retried] = ingest_landing(settings).files
    assert (retried.file_name, retried.status, retried.rows_loaded, retried.attempts) == ("b_big.jsonl", "loaded",
                                                                                          40_000, 2)  # fmt: skip


def test_a_repeat_of_a_failed_file_is_not_taken_for_a_copy(settings, data_dir):
    """The checksum-repeat check ignores failed rows: a copy of a failed file loads on its own."""
    landing = data_dir / "landing"
    write_lines(landing / "a.jsonl", [event("a1")])

    def fail_a(file_name: str, rows: int) -> None:
        if file_name == "a.jsonl":
            raise OSError("disk read error")

    assert ingest_landing(settings, on_batch=fail_a).files[0].status == "failed"
    shutil.copy2(landing / "a.jsonl", landing / "b.jsonl")
    files = by_file(ingest_landing(settings, on_batch=fail_a).files)
    assert (files["a.jsonl"].status, files["b.jsonl"].status) == ("failed", "loaded")
    assert loaded_ids(data_dir) == {"a1"}


def test_the_gate_does_not_count_a_failed_file_as_a_batch_failure(settings, data_dir):
    from expectations import SuiteRunner
    from expectations.gate import run_gate

    landing = data_dir / "landing"
    write_lines(landing / "a.jsonl", [event(f"a{i}") for i in range(50)])
    write_lines(landing / "b.jsonl", [event("b1")])

    def fail_b(file_name: str, rows: int) -> None:
        if file_name == "b.jsonl":
            raise RuntimeError("a bug")

    summary = ingest_landing(settings, on_batch=fail_b)
    with connect(str(settings.warehouse_path)) as con:
        gate = run_gate(con, summary.batch_id, SuiteRunner())
    assert gate.passed and gate.reconciles and gate.batch_problems == []
    assert {f.file_name: f.status for f in gate.files} == {"a.jsonl": "loaded", "b.jsonl": "failed"}
    assert query(data_dir, "select file_name, gate_status from raw.load_manifest order by 1") == [
        ("a.jsonl", "passed"),
        ("b.jsonl", "not_applicable"),
    ]


def test_an_older_warehouse_gets_the_attempts_column(settings, data_dir):
    with connect(str(settings.warehouse_path)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.load_manifest (file_name varchar not null, checksum varchar not null, file_size bigint "
            "not null, file_mtime double not null, rows_in bigint not null, rows_loaded bigint not null, "
            "rows_duplicate bigint not null, rows_rejected bigint not null, status varchar not null, detail varchar, "
            "loaded_at timestamp not null, load_seconds double not null)"
        )
        con.execute("insert into raw.load_manifest values ('old.jsonl', 'x', 1, 1, 0, 0, 0, 0, 'loaded', null, "
                    "now()::timestamp, 0)")  # fmt: skip
    write_lines(data_dir / "landing" / "new.jsonl", [event("n1")])
    [result] = ingest_landing(settings).files
    assert result.rows_loaded == 1
    assert query(data_dir, "select file_name, attempts from raw.load_manifest order by 1") == [
        ("new.jsonl", 1),
        ("old.jsonl", None),
    ]


# -- 7. event time bounds ----------------------------------------------------------------------------------------


def test_events_before_min_event_time_and_unrepresentable_times_are_rejected(settings, data_dir):
    lines = [
        event("ok"),  # 1
        event("year-1", timestamp="0001-01-01T00:00:00+05:00"),  # 2
        event("bc", timestamp="-0044-03-15T12:00:00Z"),  # 3
        event("just-before", timestamp="1999-12-31T23:59:59Z"),  # 4
        event("infinity", timestamp="infinity"),  # 5
        event("minus-infinity", timestamp="-infinity"),  # 6
        event("beyond", timestamp="294247-01-10T04:00:54.775807Z"),  # 7 past DuckDB's range
        event("edge", timestamp="294247-01-10T04:00:00Z", received_at="294247-01-10T04:00:00Z"),  # 8 would overflow
        event("far-received", received_at="200000-01-01T00:00:00Z", timestamp="199999-12-31T12:00:00Z"),  # 9
        event("inf-received", received_at="infinity"),  # 10
        event("exactly-min", timestamp="2000-01-01T00:00:00Z", received_at="2000-01-01T00:00:00Z"),  # 11 loads
    ]
    write_lines(data_dir / "landing" / "times.jsonl", lines)
    clean_file(data_dir / "landing")

    files = by_file(ingest_landing(settings).files)

    assert (files["times.jsonl"].rows_loaded, files["times.jsonl"].rows_rejected) == (2, 9)
    before = f"{MIN_EVENT_TIME_REASON} 2000-01-01T00:00:00Z"
    assert {n: reason for n, (reason, _) in rejected(data_dir, "times.jsonl").items()} == {
        2: before,
        3: before,
        4: before,
        5: "unparseable timestamp: infinity",
        6: "unparseable timestamp: -infinity",
        7: "unparseable timestamp: 294247-01-10T04:00:54.775807Z",
        8: "received_at more than 24 hours after load time",
        9: "received_at more than 24 hours after load time",
        10: "unparseable received_at: infinity",
    }
    assert loaded_ids(data_dir, "times.jsonl") == {"ok", "exactly-min"}
    assert files["zz_clean.jsonl"].rows_loaded == 2


def test_min_event_time_is_a_setting(settings, data_dir, monkeypatch):
    monkeypatch.setenv("MIN_EVENT_TIME", "2026-01-01T00:00:00+02:00")
    from_env = IngestSettings.from_env()
    assert from_env.min_event_time.isoformat() == "2025-12-31T22:00:00+00:00" and MIN_EVENT_TIME.year == 2000
    write_lines(data_dir / "landing" / "t.jsonl", [event("new"), event("old", timestamp="2025-12-31T21:59:59Z")])
    [result] = ingest_landing(replace(settings, min_event_time=from_env.min_event_time)).files
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    assert rejected(data_dir, "t.jsonl")[2][0] == "timestamp before min_event_time 2025-12-31T22:00:00Z"


def test_the_bounds_are_settings_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    defaults = IngestSettings.from_env()
    assert (defaults.max_line_bytes, defaults.max_raw_line_bytes, defaults.max_inflated_bytes) == (
        4 << 20, 64 << 10, 4 << 30,
    )  # fmt: skip
    assert (defaults.max_file_attempts, defaults.memory_limit, defaults.max_row_group_bytes) == (3, "50%", 512 << 20)
    for name, value in {
        "MAX_LINE_BYTES": "2000000", "MAX_RAW_LINE_BYTES": "1024", "MAX_INFLATED_BYTES": "1000",
        "MAX_ROW_GROUP_BYTES": "5000", "INGEST_MAX_FILE_ATTEMPTS": "5", "INGEST_MEMORY_LIMIT": "1GB",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    custom = IngestSettings.from_env()
    assert (custom.max_line_bytes, custom.max_raw_line_bytes, custom.max_inflated_bytes) == (2_000_000, 1024, 1000)
    assert (custom.max_row_group_bytes, custom.max_file_attempts, custom.memory_limit) == (5000, 5, "1GB")
    monkeypatch.setenv("MAX_LINE_BYTES", "1000")
    with pytest.raises(ValueError, match="must stay above the properties limit"):
        IngestSettings.from_env()


def test_the_raw_events_suite_has_the_lower_bound(settings, data_dir, monkeypatch):
    """A second line behind ingestion: the suite fails on a row dated before MIN_EVENT_TIME, however it got in."""
    from expectations import SUITES, SuiteRunner
    from expectations.suites import raw_events

    write_lines(data_dir / "landing" / "a.jsonl", [event("a1"), event("a2", timestamp="2012-06-01T00:00:00Z",
                                                                      received_at="2012-06-01T00:00:00Z")])  # fmt: skip
    ingest_landing(settings)
    runner = SuiteRunner()
    with connect(str(settings.warehouse_path)) as con:
        assert runner.validate(con, SUITES["raw_events"]).success
        monkeypatch.setenv("MIN_EVENT_TIME", "2020-01-01T00:00:00Z")
        outcome = runner.validate(con, SUITES["raw_events"])
    [failure] = outcome.failures
    assert failure.expectation.startswith("expect_column_values_to_be_between(timestamp_epoch_seconds")
    assert failure.unexpected_count == 1
    [bound] = [e for e in raw_events.build().expectations if getattr(e, "column", None) == "timestamp_epoch_seconds"]
    assert bound.min_value == 1577836800.0


# -- 8. properties: arbitrary bytes and JSON never make ingestion raise ---------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EVENTISH = st.fixed_dictionaries(
    {"message_id": st.text(max_size=6), "user_id": st.text(max_size=4)},
    optional={
        "timestamp": st.sampled_from(["2026-01-05T10:00:00Z", "0001-01-01", "x", "infinity", "2999-01-01"]),
        "type": st.sampled_from(["track", "page", "nope"]),
        "event": st.text(max_size=10),
        "properties": JSON,
    },
)
NAMES = ("a.jsonl", "b.jsonl.gz", "c.csv", "d.csv.gz", "e.parquet", "f.json")


def _run_in_fresh_landing(files: dict[str, bytes], **overrides: object) -> tuple[list[FileResult], Path]:
    root = Path(tempfile.mkdtemp(prefix="hyp-"))
    landing = root / "landing"
    landing.mkdir()
    for name, payload in files.items():
        put(landing / name, payload)
    results = ingest_landing(replace(IngestSettings(data_dir=root), **overrides)).files
    return results, root


def _non_blank_lines(payload: bytes) -> int:
    body = payload[3:] if payload.startswith(BOM) else payload
    return sum(1 for part in body.split(b"\n") if part.strip())


PROPERTY_SETTINGS = hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(st.sampled_from(NAMES), st.binary(max_size=600), min_size=1, max_size=4),
    st.sampled_from([SMALL_LINE, 4 << 20]),
)
def test_arbitrary_bytes_in_any_file_type_never_raise_and_always_reconcile(files, max_line_bytes):
    compressed = {name: gzip.compress(data, mtime=0) if name.endswith(".gz") and data[:1] != b"!" else data
                  for name, data in files.items()}  # fmt: skip
    results, root = _run_in_fresh_landing(compressed, max_line_bytes=max_line_bytes, max_raw_line_bytes=64)
    try:
        assert sorted(r.file_name for r in results) == sorted(files)
        assert all(r.reconciles and r.status not in ("failed", "quarantined") for r in results), results
        for r in results:
            if r.file_name in ("a.jsonl", "f.json") and r.status != "repeat":  # same bytes as another file
                assert r.rows_in == _non_blank_lines(files[r.file_name]), r
        [(longest,)] = query(root, "select coalesce(max(strlen(raw_line)), 0) from raw.events_rejected")
        assert longest <= max(64, 1000 if max_line_bytes == SMALL_LINE else 0)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(EVENTISH, JSON, st.text(max_size=30)), min_size=1, max_size=30), st.booleans())
def test_arbitrary_json_lines_load_or_reject_one_row_each(values, compress):
    payload = b"".join(
        (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode("utf-8", "surrogatepass")
        + b"\n"
        for value in values
    )
    name = "lines.jsonl.gz" if compress else "lines.jsonl"
    results, root = _run_in_fresh_landing({name: gzip.compress(payload, mtime=0) if compress else payload})
    try:
        [result] = results
        assert result.reconciles and result.status == "loaded", result
        assert result.rows_in == _non_blank_lines(payload)
        ids = [row[0] for row in query(root, "select message_id from raw.events")]
        assert len(ids) == len(set(ids)) == result.rows_loaded
    finally:
        shutil.rmtree(root, ignore_errors=True)


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), min_size=1, max_size=7),
        max_size=12,
    )
)
def test_random_csv_text_never_raises_and_reconciles(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["message_id", "user_id", "type", "event", "timestamp", "properties"])
    writer.writerows(rows)
    results, root = _run_in_fresh_landing({"r.csv": buffer.getvalue().encode()})
    try:
        [result] = results
        assert result.reconciles and result.status == "loaded", result
    finally:
        shutil.rmtree(root, ignore_errors=True)


@PROPERTY_SETTINGS
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=200))
def test_the_line_reader_returns_every_non_blank_line_or_a_long_line(payload, max_line_bytes):
    """The reader alone, on arbitrary bytes with a tiny bound: one row per non-blank line, never a longer one."""
    root = Path(tempfile.mkdtemp(prefix="hyp-"))
    try:
        path = put(root / "x.jsonl", payload)
        reader = FileReader(path, batch_rows=7, max_line_bytes=max_line_bytes)
        tables = list(reader.batches())
        numbers = [n for table in tables for n in table["line_number"].to_pylist()]
        raws = [raw for table in tables for raw in table["raw_line"].to_pylist()]
        body = payload[3:] if payload.startswith(BOM) else payload
        parts = body.split(b"\n")
        if parts and parts[-1] == b"":
            parts.pop()
        expected = [i + 1 for i, part in enumerate(parts) if part.strip() or len(part) > max_line_bytes]
        assert numbers == expected
        assert all(len(raw.encode("utf-8", "surrogatepass")) <= 4 * max(max_line_bytes, 1000) for raw in raws)
    finally:
        shutil.rmtree(root, ignore_errors=True)
