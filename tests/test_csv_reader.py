"""The CSV reader's one-pass path for runs of one-line records gives exactly what the record-by-record path gives."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ingestion import readers
from ingestion.readers import FileReader

CLEAN = 20_000  # about 1.5 MB of one-line records: more than one 1 MB block
HEADER = b"message_id,user_id,type,event,timestamp,properties\n"


def read(path: Path, *, one_pass: bool, monkeypatch: pytest.MonkeyPatch, **options) -> tuple[pa.Table, str | None]:
    """Every row the reader gives for `path`, with or without the one-pass path, and the file's damage."""
    with monkeypatch.context() as patch:
        if not one_pass:
            patch.setattr(readers, "_simple_csv_run", lambda *args: None)
        reader = FileReader(path, **options)
        tables = list(reader.batches())
    table = pa.concat_tables(tables) if tables else pa.table({n: [] for n in readers.TABLE_SCHEMA.names})
    return table.cast(readers.TABLE_SCHEMA), reader.damage


def both_paths(path: Path, monkeypatch: pytest.MonkeyPatch, **options) -> pa.Table:
    fast, fast_damage = read(path, one_pass=True, monkeypatch=monkeypatch, **options)
    slow, slow_damage = read(path, one_pass=False, monkeypatch=monkeypatch, **options)
    assert fast.to_pylist() == slow.to_pylist()
    assert fast_damage == slow_damage
    return fast


def one_pass_rows(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many rows of `path` the one-pass path gave."""
    given_rows = []
    one_pass = readers._simple_csv_run

    def counted(*args):
        table = one_pass(*args)
        given_rows.append(0 if table is None else table.num_rows)
        return table

    with monkeypatch.context() as patch:
        patch.setattr(readers, "_simple_csv_run", counted)
        list(FileReader(path).batches())
    return sum(given_rows)


def good_line(number: int) -> bytes:
    return f'm{number},u{number},track,Page Viewed,2026-01-05T10:00:00Z,"{{""page"": ""p{number}""}}"\n'.encode()


def test_a_file_that_turns_odd_half_way_reads_the_same_on_both_paths(tmp_path, monkeypatch):
    """Clean 1 MB runs first (one pass), then a quoted line break, a lone CR, a NUL, bad UTF-8, a short record and a
    blank line (record by record from there on): same rows, same line numbers."""
    clean = b"".join(good_line(n) for n in range(1, CLEAN + 1))
    odd = (
        b'q1,u1,track,Page Viewed,2026-01-05T10:00:00Z,"{""a"":\n1}"\n'  # a record over two lines
        b"q2,u2,track,Page Viewed,2026-01-05T10:00:00Z,{}\rq3,u3,track,Signed Up,2026-01-05T10:00:00Z,{}\n"
        b"q4,u\x004,track,Page Viewed,2026-01-05T10:00:00Z,{}\n"
        b"q5,u\xff5,track,Page Viewed,2026-01-05T10:00:00Z,{}\n"
        b"q6,u6,track\n"
        b"\n"
        b",,,,,\n"
    )
    path = tmp_path / "odd.csv"
    path.write_bytes(HEADER + clean + odd + b"".join(good_line(n) for n in range(CLEAN + 1, CLEAN + 11)))
    table = both_paths(path, monkeypatch)
    assert 0 < one_pass_rows(path, monkeypatch) < CLEAN  # the first run in one pass, the rest record by record
    rows = {row["line_number"]: row for row in table.to_pylist()}
    assert rows[2]["message_id"] == "m1" and rows[CLEAN + 1]["message_id"] == f"m{CLEAN}"
    # a record over several lines has the number of its last line
    assert rows[CLEAN + 3]["message_id"] == "q1" and rows[CLEAN + 3]["properties"] == '{"a":\n1}'
    assert rows[CLEAN + 4]["message_id"] == "q2" and rows[CLEAN + 5]["message_id"] == "q3"  # a lone CR ends a line
    assert rows[CLEAN + 6]["pre_reason"] == "contains a NUL byte"
    assert rows[CLEAN + 7]["pre_reason"] == "not valid UTF-8"
    assert rows[CLEAN + 8]["pre_reason"] == "expected 6 fields, found 3"
    assert CLEAN + 9 not in rows and CLEAN + 10 not in rows  # blank records are no rows
    assert rows[CLEAN + 11]["message_id"] == f"m{CLEAN + 1}"
    assert table.num_rows == CLEAN + 6 + 10


def test_short_records_in_a_clean_run_keep_their_reason_and_text(tmp_path, monkeypatch):
    path = tmp_path / "short.csv.gz"
    path.write_bytes(gzip.compress(HEADER + good_line(1) + b'a,"b,c"\r\n' + good_line(3) + b"x,y,z,1,2,3,4\n"))
    table = both_paths(path, monkeypatch)
    assert one_pass_rows(path, monkeypatch) == 4
    assert table.column("pre_reason").to_pylist() == [
        None, "expected 6 fields, found 2", None, "expected 6 fields, found 7"
    ]  # fmt: skip
    assert table.column("raw_line").to_pylist() == [None, 'a,"b,c"', None, "x,y,z,1,2,3,4"]
    assert table.column("line_number").to_pylist() == [2, 3, 4, 5]


def test_a_truncated_gzip_gives_the_same_rows_and_damage_on_both_paths(tmp_path, monkeypatch):
    whole = gzip.compress(HEADER + b"".join(good_line(n) for n in range(1, 3001)))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    table = both_paths(path, monkeypatch)
    assert one_pass_rows(path, monkeypatch) > 0
    assert table.column("pre_reason").to_pylist()[-1].startswith("file damaged after line")


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.lists(st.text(alphabet='ab,"\r\n \x00é', max_size=8), min_size=1, max_size=8),
            st.binary(max_size=40).map(lambda raw: [raw.decode("utf-8", "surrogateescape")]),
        ),
        max_size=20,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_random_csv_reads_the_same_on_both_paths(tmp_path, monkeypatch, rows, terminator):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(["message_id", "user_id", "type", "event", "timestamp", "properties"])
    writer.writerows(rows)
    path = tmp_path / "r.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8", "surrogateescape"))
    both_paths(path, monkeypatch, max_line_bytes=64)
