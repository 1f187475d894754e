"""Events land from an S3-compatible bucket (moto's server, over real HTTP) in Segment's and RudderStack's layouts.

Objects are copied into landing/s3/<bucket>/<key> and loaded with the folder's manifest, deduplication and
reconciliation: a copy of an object already loaded loads nothing again, a hostile key or an oversized object is
reported and skipped, and a sync stops at its byte bound.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import orjson
import pytest
from moto.server import ThreadedMotoServer

from ingestion import IngestSettings, ingest_landing
from ingestion.s3_source import local_path, sync_s3
from tests.conftest import event, query

BUCKET = "segment-exports"
PREFIX = "segment-logs/"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _lines(*events: dict) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events))


def _settings(data_dir: Path, endpoint: str, **values: object) -> IngestSettings:
    settings = IngestSettings(data_dir=data_dir, settle_seconds=0)
    return replace(settings, s3_bucket=BUCKET, s3_prefix=PREFIX, s3_endpoint_url=endpoint, **values)


def test_segment_and_rudderstack_objects_land_once_each(data_dir: Path, endpoint: str, bucket) -> None:
    segment_key = f"{PREFIX}src_1/1764547200000/1764547200123.a9c1c6d8ad02.gz"
    rudder_key = f"{PREFIX}rudder-logs/src_2/12-01-2026/1764547200.src_2.json.gz"
    bucket.put_object(Bucket=BUCKET, Key=segment_key, Body=_lines(event("m1", "u1"), event("m2", "u2"), {"bad": 1}))
    bucket.put_object(Bucket=BUCKET, Key=rudder_key, Body=_lines(event("m3", "u3"), event("m1", "u1")))
    bucket.put_object(Bucket=BUCKET, Key="elsewhere/1764547200123.b.gz", Body=_lines(event("m9", "u9")))
    settings = _settings(data_dir, endpoint)

    synced = sync_s3(settings)
    assert sorted(synced.copied) == sorted(f"s3/{BUCKET}/{key}" for key in (segment_key, rudder_key))
    summary = ingest_landing(settings)
    by_file = {result.file_name: result for result in summary.files}
    # files load in name order: RudderStack's (under rudder-logs/) first, so m1 is a duplicate in Segment's
    rudder = by_file[f"s3/{BUCKET}/{rudder_key}"]
    assert (rudder.rows_in, rudder.rows_loaded, rudder.rows_duplicate) == (2, 2, 0)
    segment = by_file[f"s3/{BUCKET}/{segment_key}"]
    assert (segment.rows_in, segment.rows_loaded, segment.rows_duplicate, segment.rows_rejected) == (3, 1, 1, 1)
    assert all(result.reconciles for result in summary.files)
    assert query(data_dir, "select count(*) from raw.events") == [(3,)]

    # again: nothing new to copy, nothing loaded twice; a copy of a loaded object under another key is a repeat
    again = sync_s3(settings)
    assert again.copied == [] and again.already_copied == 2
    bucket.copy_object(Bucket=BUCKET, Key=f"{PREFIX}copy/1764547200999.ffff.gz", CopySource=f"{BUCKET}/{segment_key}")
    sync_s3(settings)
    repeat = ingest_landing(settings).files
    assert [(r.status, r.rows_loaded) for r in repeat] == [("repeat", 0)]
    assert query(data_dir, "select count(*) from raw.events") == [(3,)]


def test_hostile_keys_and_oversized_objects_are_reported_not_copied(data_dir: Path, endpoint: str, bucket) -> None:
    for key in (f"{PREFIX}../../escape.jsonl", f"{PREFIX}.hidden/1764547200123.a.gz", f"{PREFIX}a//b/../c.jsonl"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=_lines(event("h1", "u1")))
    bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}big/1764547200123.b.gz", Body=b"x" * 5000)
    bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}ok/1764547200123.c.gz", Body=_lines(event("ok1", "u1")))
    synced = sync_s3(_settings(data_dir, endpoint, s3_max_object_bytes=4000))
    assert synced.copied == [f"s3/{BUCKET}/{PREFIX}ok/1764547200123.c.gz"]
    assert (
        len(synced.skipped) == 4 and "LANDING_S3_MAX_OBJECT_BYTES" in synced.skipped[f"{PREFIX}big/1764547200123.b.gz"]
    )
    copied = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    assert copied == [f"landing/s3/{BUCKET}/{PREFIX}ok/1764547200123.c.gz"]


def test_a_sync_stops_at_its_byte_bound_and_the_next_takes_the_rest(data_dir: Path, endpoint: str, bucket) -> None:
    for n in range(3):
        bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}{n}/1764547200123.a.gz", Body=b"y" * 1000)
    settings = _settings(data_dir, endpoint, s3_max_bytes_per_sync=1500)
    first, second, third = sync_s3(settings), sync_s3(settings), sync_s3(settings)
    assert [len(s.copied) for s in (first, second, third)] == [1, 1, 1]
    assert first.deferred == 2 and third.already_copied == 2


@pytest.mark.parametrize(
    ("key", "path"),
    [("a/b.jsonl", "a/b.jsonl"), ("a//b.jsonl", "a/b.jsonl"), ("../b", None), ("a/./b", None), ("a/", None),
     ("a/.b", None), ("a\x00b", None), ("x" * 256, None)],
)  # fmt: skip
def test_keys_become_plain_relative_paths_or_nothing(key: str, path: str | None) -> None:
    assert local_path(key) == (None if path is None else Path(path))
