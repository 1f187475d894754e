"""Ingestion from the landing folder: every rejection kind, duplicates, repeats, damaged files and crashes."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion import IngestSettings, ingest_landing, stage
from tests.conftest import event, query, settle, write_lines


def reasons(data_dir: Path, file_name: str) -> dict[int, str]:
    rows = query(data_dir, "select line_number, reason from raw.events_rejected where source_file = ?", [file_name])
    return dict(rows)


def test_every_bad_row_kind_is_rejected_with_its_reason_and_good_rows_land(settings, data_dir):
    blob = "x" * (1_048_576 + 10)
    lines = [
        event("good-1"),  # 1 loads
        "this is not json",  # 2
        "[1, 2, 3]",  # 3
        event(None),  # 4 no message id
        event("m5", user_id=None),  # 5 neither id
        event("m6", timestamp="not-a-date"),  # 6
        event("m7", timestamp="2026-02-30T10:00:00Z"),  # 7 no such day
        event("m8", timestamp="2999-01-01T00:00:00Z"),  # 8 future
        event("m9", type="purchase"),  # 9 unknown type
        event("m10", event=None),  # 10 track without event
        event("m11", properties={"blob": blob}),  # 11 > 1 MB of properties
        event("m12", properties=["not", "an", "object"]),  # 12
        b'{"message_id": "m13", "user_id": "u\x00", "timestamp": "2026-01-05T10:00:00Z", "event": "x"}',
        b'{"message_id": "m14", "user_id": "caf\xe9", "timestamp": "2026-01-05T10:00:00Z", "event": "x"}',
        event("m15", received_at="yesterday"),  # 15
        event("good-2", type="page", event=None, anonymous_id="a1", user_id=None),  # 16 loads
    ]
    write_lines(data_dir / "landing" / "batch.jsonl", lines)

    summary = ingest_landing(settings)

    [result] = summary.files
    assert (result.rows_in, result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (16, 2, 0, 14)
    assert result.reconciles and result.status == "loaded"
    got = reasons(data_dir, "batch.jsonl")
    assert got == {
        2: "not valid JSON",
        3: "not a JSON object",
        4: "missing message_id",
        5: "missing both user_id and anonymous_id",
        6: "unparseable timestamp: not-a-date",
        7: "unparseable timestamp: 2026-02-30T10:00:00Z",
        8: "timestamp more than 24 hours after received_at",
        9: "unknown type: purchase",
        10: "track event without an event name",
        11: f"properties blob of {len(blob) + 11} bytes is over the limit of 1048576 bytes",
        12: "properties is not a JSON object",
        13: "contains a NUL byte",
        14: "not valid UTF-8 (byte 37)",
        15: "unparseable received_at: yesterday",
    }
    # the raw text is kept for every rejected row
    raw = dict(query(data_dir, "select line_number, raw_line from raw.events_rejected"))
    assert raw[2] == "this is not json" and raw[14].startswith('{"message_id": "m14"')
    assert sorted(r[0] for r in query(data_dir, "select message_id from raw.events")) == ["good-1", "good-2"]


def test_future_tolerance_counts_from_received_at_or_load_time(settings, data_dir):
    lines = [
        event("late-ok", timestamp="2026-01-06T09:00:00Z", received_at="2026-01-05T10:00:00Z"),  # +23 h
        event("too-far", timestamp="2026-01-06T11:00:00Z", received_at="2026-01-05T10:00:00Z"),  # +25 h
        event("no-received", timestamp="2026-01-05T10:00:00Z", received_at=None),
    ]
    write_lines(data_dir / "landing" / "t.jsonl", lines)
    ingest_landing(replace(settings, future_tolerance_hours=24))
    assert sorted(r[0] for r in query(data_dir, "select message_id from raw.events")) == [
        "late-ok",
        "no-received",
    ]
    assert reasons(data_dir, "t.jsonl") == {2: "timestamp more than 24 hours after received_at"}


def test_camel_case_offsets_and_formats_load_to_the_same_rows(settings, data_dir):
    landing = data_dir / "landing"
    snake = event("s1", timestamp="2026-01-05T12:00:00+02:00", properties={"revenue": 10.5})
    camel = {
        "messageId": "c1",
        "userId": "u2",
        "anonymousId": "a2",
        "type": "track",
        "event": "Order Completed",
        "timestamp": "2026-01-05T05:00:00-05:00",
        "receivedAt": "2026-01-05T10:00:01Z",
        "properties": {"revenue": 3},
        "context": {"campaign": {"source": "google"}},
    }
    write_lines(landing / "a.jsonl.gz", [snake, camel], compress=True)

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["messageId", "userId", "type", "event", "timestamp", "properties"])
    writer.writerow(["v1", "u3", "track", "Feature Used", "2026-01-05T10:00:00Z", '{"feature": "export"}'])
    writer.writerow(["v2", "u3", "track", "Feature Used", "2026-01-05T10:00:00Z", "{broken"])
    (landing / "b.csv.gz").write_bytes(gzip.compress(buffer.getvalue().encode()))
    settle(landing / "b.csv.gz")

    table = pa.table(
        {
            "message_id": ["p1"],
            "anonymous_id": ["a9"],
            "type": ["page"],
            "timestamp": pa.array([1767607200000000], pa.timestamp("us", tz="UTC")),  # 2026-01-05T10:00:00Z
            "properties": pa.array([{"name": "home"}]),
        }
    )
    pq.write_table(table, landing / "c.parquet")
    settle(landing / "c.parquet")

    summary = ingest_landing(settings)

    assert {r.file_name: (r.rows_loaded, r.rows_rejected) for r in summary.files} == {
        "a.jsonl.gz": (2, 0),
        "b.csv.gz": (1, 1),
        "c.parquet": (1, 0),
    }
    rows = {
        r[0]: r[1:]
        for r in query(
            data_dir,
            "select message_id, user_id, anonymous_id, timestamp, received_at is not null, "
            "properties->>'revenue', properties->>'feature', properties->>'name', context->'campaign'->>'source' "
            "from raw.events",
        )
    }
    ts = "2026-01-05 10:00:00"
    assert str(rows["s1"][2]) == ts and rows["s1"][4] == "10.5"
    assert rows["c1"][:3] == ("u2", "a2", rows["c1"][2]) and str(rows["c1"][2]) == ts
    assert rows["c1"][7] == "google"
    assert rows["v1"][5] == "export" and rows["p1"][6] == "home" and str(rows["p1"][2]) == ts
    assert reasons(data_dir, "b.csv.gz") == {3: "properties is not valid JSON"}


def test_duplicates_are_kept_once_within_a_file_across_files_and_reruns(settings, data_dir):
    landing = data_dir / "landing"
    write_lines(landing / "1.jsonl", [event("a"), event("b"), event("a", event="Other")])
    first = ingest_landing(settings)
    write_lines(landing / "2.jsonl", [event("b"), event("c")])
    second = ingest_landing(settings)
    third = ingest_landing(settings)

    assert [(r.rows_loaded, r.rows_duplicate) for r in first.files] == [(2, 1)]
    assert [(r.rows_loaded, r.rows_duplicate) for r in second.files] == [(1, 1)]
    assert third.files == []  # nothing new: nothing reprocessed
    assert query(data_dir, "select message_id, event from raw.events order by message_id") == [
        ("a", "Product Viewed"),
        ("b", "Product Viewed"),
        ("c", "Product Viewed"),
    ]


def test_the_same_file_under_another_name_is_recorded_as_a_repeat_and_not_loaded(settings, data_dir):
    landing = data_dir / "landing"
    original = write_lines(landing / "day1.jsonl", [event("a"), event("b")])
    ingest_landing(settings)
    copy = landing / "day1_again.jsonl"
    copy.write_bytes(original.read_bytes())
    settle(copy)

    summary = ingest_landing(settings)

    [result] = summary.files
    assert (result.status, result.rows_loaded, result.detail) == (
        "repeat",
        0,
        "same content as day1.jsonl, not loaded",
    )
    assert query(data_dir, "select count(*) from raw.events") == [(2,)]
    assert query(data_dir, "select file_name, status from raw.load_manifest order by file_name") == [
        ("day1.jsonl", "loaded"),
        ("day1_again.jsonl", "repeat"),
    ]
    assert ingest_landing(settings).files == []  # the repeat is recorded once


def test_a_touched_file_is_read_once_more_then_known_by_its_new_time(settings, data_dir, monkeypatch):
    loaded = write_lines(data_dir / "landing" / "day1.jsonl", [event("a"), event("b")])
    ingest_landing(settings)
    os.utime(loaded, (loaded.stat().st_atime, loaded.stat().st_mtime - 3600))  # e.g. copied back from a backup
    hashed = []
    real_sha256_of = stage.sha256_of
    monkeypatch.setattr(stage, "sha256_of", lambda path, **kw: hashed.append(path.name) or real_sha256_of(path, **kw))

    assert ingest_landing(settings).files == []
    assert ingest_landing(settings).files == []

    assert hashed == ["day1.jsonl"]  # the second run knew it without reading it
    assert query(data_dir, "select count(*) from raw.events") == [(2,)]


def test_truncated_gzip_loads_complete_lines_and_rejects_the_damaged_tail(settings, data_dir):
    payload = b"".join(orjson.dumps(event(f"m{i}")) + b"\n" for i in range(2000))
    compressed = gzip.compress(payload, mtime=0)
    path = data_dir / "landing" / "cut.jsonl.gz"
    truncated = compressed[: len(compressed) * 2 // 3]
    path.write_bytes(truncated)
    settle(path)
    recoverable = zlib.decompressobj(wbits=31).decompress(truncated)
    complete_lines = recoverable.count(b"\n")

    [result] = ingest_landing(replace(settings, batch_rows=256)).files

    assert result.status == "damaged" and result.reconciles
    assert result.rows_rejected == 1 and result.rows_loaded == complete_lines > 1000
    loaded = query(data_dir, "select count(*), max(source_line) from raw.events")[0]
    assert loaded == (result.rows_loaded, result.rows_loaded)  # every complete line up to the damage
    [(line, reason)] = query(data_dir, "select line_number, reason from raw.events_rejected")
    assert line == result.rows_loaded + 1
    assert (
        reason == f"file damaged after line {complete_lines}: gzip stream ends before its end marker (file truncated)"
    )
    fragment = query(data_dir, "select raw_line from raw.events_rejected")[0][0]
    assert fragment == recoverable[recoverable.rfind(b"\n") + 1 :].decode()
    assert query(data_dir, "select status, detail like 'file damaged%' from raw.load_manifest") == [("damaged", True)]


def test_csv_without_a_required_column_rejects_every_row_naming_the_column(settings, data_dir):
    path = data_dir / "landing" / "no_ts.csv"
    path.write_text("message_id,user_id,event\nm1,u1,Signed Up\nm2,u2,Signed Up\n")
    settle(path)

    [result] = ingest_landing(settings).files

    assert (result.status, result.rows_in, result.rows_rejected, result.rows_loaded) == (
        "missing_columns",
        2,
        2,
        0,
    )
    assert set(reasons(data_dir, "no_ts.csv").values()) == {"file lacks required column(s): timestamp"}
    assert reasons(data_dir, "no_ts.csv").keys() == {2, 3}


def test_files_still_being_written_wait_for_the_next_run(settings, data_dir):
    landing = data_dir / "landing"
    write_lines(landing / ".hidden.jsonl", [event("h")])
    write_lines(landing / "upload.jsonl.part", [event("p")])
    write_lines(landing / "spool.tmp", [event("t")])
    fresh = landing / "fresh.jsonl"
    fresh.write_bytes(orjson.dumps(event("f")) + b"\n")  # modified just now

    summary = ingest_landing(settings)

    assert summary.files == [] and summary.files_waiting == 4
    settle(fresh)
    assert [r.file_name for r in ingest_landing(settings).files] == ["fresh.jsonl"]


def test_an_unsupported_file_is_recorded_not_loaded(settings, data_dir):
    path = data_dir / "landing" / "notes.txt"
    path.write_text("hello\n")
    settle(path)
    [result] = ingest_landing(settings).files
    assert result.status == "unsupported" and result.rows_in == 0
    assert ingest_landing(settings).files == []


def test_an_exception_mid_file_leaves_no_partial_rows_and_the_next_run_loads_it(settings, data_dir):
    write_lines(data_dir / "landing" / "big.jsonl", [event(f"m{i}") for i in range(50)])
    small_batches = replace(settings, batch_rows=10)
    batches: list[int] = []

    def crash_after_two(file_name: str, rows: int) -> None:
        batches.append(rows)
        if len(batches) == 2:
            raise RuntimeError("disk on fire")

    [failed] = ingest_landing(small_batches, on_batch=crash_after_two).files

    assert (failed.status, failed.rows_in, failed.attempts) == ("failed", 0, 1) and failed.reconciles
    assert "RuntimeError: disk on fire" in failed.detail
    assert query(data_dir, "select count(*) from raw.events") == [(0,)]
    assert query(data_dir, "select status, rows_in, attempts from raw.load_manifest") == [("failed", 0, 1)]
    [result] = ingest_landing(small_batches).files
    assert (result.rows_loaded, result.status, result.attempts) == (50, "loaded", 2)
    # the successful attempt's row replaced the failed one
    assert query(data_dir, "select status, rows_loaded, attempts from raw.load_manifest") == [("loaded", 50, 2)]


def test_a_killed_process_mid_file_leaves_no_partial_rows(settings, data_dir):
    """The process dies without any cleanup (like kill -9) after loading part of a file."""
    write_lines(data_dir / "landing" / "one.jsonl", [event("first")])
    ingest_landing(settings)
    write_lines(data_dir / "landing" / "two.jsonl", [event(f"m{i}") for i in range(100)])
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from ingestion import IngestSettings, ingest_landing\n"
        "seen = []\n"
        "def die(name, rows):\n"
        "    seen.append(rows)\n"
        "    if len(seen) == 3:\n"
        "        os._exit(137)\n"
        "ingest_landing(IngestSettings(Path(sys.argv[1]), batch_rows=10), on_batch=die)\n"
    )
    process = subprocess.run([sys.executable, "-c", script, str(data_dir)], env=os.environ.copy(), check=False)
    assert process.returncode == 137

    assert query(data_dir, "select count(*) from raw.events") == [(1,)]
    assert query(data_dir, "select file_name from raw.load_manifest") == [("one.jsonl",)]
    [result] = ingest_landing(settings).files
    assert (result.file_name, result.rows_loaded) == ("two.jsonl", 100)


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("FUTURE_TOLERANCE_HOURS", "2")
    settings = IngestSettings.from_env()
    assert settings.landing_dir == tmp_path / "elsewhere" / "landing"
    assert settings.warehouse_path == tmp_path / "elsewhere" / "warehouse.duckdb"
    assert settings.future_tolerance_hours == 2.0 and settings.settle_seconds == 5.0


def test_revenue_and_event_name_rules(settings, data_dir):
    lines = [
        event("order", event="Order Completed", properties={"revenue": 25.0}),  # 1 loads
        event("refund", event="Order Refunded", properties={"revenue": -25.0}),  # 2 loads: refunds are negative
        event("neg-order", event="order_completed", properties={"revenue": -5}),  # 3
        event("pos-refund", event="Order Refunded", properties={"revenue": 5}),  # 4
        event("text-revenue", event="Order Completed", properties={"revenue": "lots"}),  # 5
        event("huge", event="Order Completed", properties={"revenue": 5e9}),  # 6
        event("bad-name", event="<script>alert(1)</script>"),  # 7
        event("long-name", event="x" * 201),  # 8
        event("null-revenue", event="Order Completed", properties={"revenue": None}),  # 9 loads
        event("ten-mb", properties={"blob": "y" * 10_000_000}),  # 10: a line over max_line_bytes
        event("two-mb", properties={"blob": "y" * 2_000_000}),  # 11
        event("nan", event="Order Completed", properties={"revenue": "NaN"}),  # 12
        event("inf", event="Order Refunded", properties={"revenue": "-Infinity"}),  # 13
        b'{"message_id": "e400", "user_id": "u1", "type": "track", "event": "Order Completed", '
        b'"timestamp": "2026-01-05T10:00:00Z", "properties": {"revenue": 1e400}}',  # 14: a JSON number over a double
    ]
    write_lines(data_dir / "landing" / "money.jsonl", lines)
    [result] = ingest_landing(settings).files
    assert (result.rows_loaded, result.rows_rejected) == (3, 11)
    assert reasons(data_dir, "money.jsonl") == {
        3: "negative revenue on an order (only refunds may be negative)",
        4: "positive revenue on a refund",
        5: "revenue is not a number: lots",
        6: "revenue beyond the limit of 1000000",
        7: "malformed event name: <script>alert(1)</script>",
        8: "malformed event name: " + "x" * 80,
        10: "line of more than 4194304 bytes is over max_line_bytes (4194304)",
        11: "properties blob of 2000011 bytes is over the limit of 1048576 bytes",
        12: "revenue is not a finite number: NaN",
        13: "revenue is not a finite number: -Infinity",
        14: "revenue is not a finite number: 1e400",
    }


def test_bad_input_matrix_every_file_reconciles_and_good_rows_land(settings, data_dir):
    """One file per kind of bad input in one landing folder: no crash, good rows in, every file reconciles."""
    landing = data_dir / "landing"
    good = event("good-1")
    write_lines(landing / "not_object.jsonl", [good | {"message_id": "g-a"}, "[1, 2]", '"just a string"'])
    write_lines(landing / "unknown_type.jsonl", [event("g-b"), event("t1", type="purchase")])
    write_lines(landing / "year_2999.jsonl", [event("g-c"), event("t2", timestamp="2999-01-01T00:00:00Z")])
    write_lines(landing / "nul.jsonl", [event("g-d"), b'{"message_id": "n\x00", "user_id": "u", "event": "x"}'])
    write_lines(
        landing / "latin1.jsonl", [event("g-e"), '{"message_id": "l1", "user_id": "Jos\xe9"}'.encode("latin-1")]
    )
    write_lines(landing / "negative_order.jsonl", [event("g-f"), event("o1", event="Order Completed",
                                                                        properties={"revenue": -1})])  # fmt: skip
    write_lines(landing / "blob.jsonl", [event("g-g"), event("b1", properties={"x": "z" * 10_000_000})])
    payload = gzip.compress(b"".join(orjson.dumps(event(f"gz-{i}")) + b"\n" for i in range(500)), mtime=0)
    (landing / "truncated.jsonl.gz").write_bytes(payload[: len(payload) // 2])
    (landing / "no_column.csv").write_text("message_id,user_id\nc1,u1\n")
    write_lines(landing / "renamed_copy.jsonl", [event("g-a")])
    (landing / "renamed_copy_2.jsonl").write_bytes((landing / "renamed_copy.jsonl").read_bytes())
    (landing / "still_writing.jsonl.part").write_bytes(b"{}\n")
    for path in landing.iterdir():
        settle(path)

    summary = ingest_landing(settings)

    by_file = {r.file_name: r for r in summary.files}
    assert all(r.reconciles for r in summary.files)
    assert "still_writing.jsonl.part" not in by_file and summary.files_waiting == 1
    assert by_file["renamed_copy_2.jsonl"].status == "repeat"
    assert (by_file["truncated.jsonl.gz"].status, by_file["no_column.csv"].status) == ("damaged", "missing_columns")
    for name in ("not_object", "unknown_type", "year_2999", "nul", "latin1", "negative_order", "blob"):
        assert by_file[f"{name}.jsonl"].rows_loaded == 1 and by_file[f"{name}.jsonl"].rows_rejected >= 1, name
    # every rejected row names its file, its line and a reason
    assert query(data_dir, "select count(*) from raw.events_rejected where source_file is null or line_number "
                 "is null or reason is null") == [(0,)]  # fmt: skip
