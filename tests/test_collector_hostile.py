"""Hostile clients against the real collector: deep JSON, dates at the ends of time, gzip tricks, dripping connections,
connection floods, /metrics from outside; and property-based tests of `prepare` and of the whole request path."""

from __future__ import annotations

import gzip
import logging
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collector import CollectorSettings
from collector.events import Accepted, Rejection, RequestInfo, prepare
from event_contract import MIN_EVENT_TIME_REASON
from settings import SettingError as SettingsError
from tests.collector_server import ThreadServer, free_port, landed_lines

KEYS = {"web-key": "web"}
WEB = ("web-key", "")


def settings_for(data_dir: Path, **overrides: Any) -> CollectorSettings:
    values: dict[str, Any] = {"data_dir": data_dir, "write_keys": KEYS, "rotate_seconds": 60.0}
    values.update(overrides)
    return CollectorSettings(**values)


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "type": "track",
        "messageId": message_id,
        "userId": "u1",
        "event": "Product Viewed",
        "timestamp": "2026-11-01T10:00:00Z",
        "properties": {"product_id": "p1"},
    }
    row.update(fields)
    return {key: value for key, value in row.items() if value is not None}


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def good_batch(count: int = 10) -> list[dict[str, Any]]:
    return [track(f"good{i}") for i in range(count)]


def post_batch(server: ThreadServer, batch: list[Any], **extra: Any) -> httpx.Response:
    return httpx.post(server.url + "/v1/batch", auth=WEB, json={"batch": batch, **extra})


def rejected(answer: httpx.Response) -> list[tuple[int, str]]:
    return [(r["index"], r["code"]) for r in answer.json()["rejected"]]


# -- per-event failures are rejections, the rest of the batch is kept ----------------------------------------------


def test_an_event_nested_300_deep_is_rejected_and_the_ten_good_ones_are_kept(data_dir):
    deep = track("deep", properties=nested(300))
    with ThreadServer(settings_for(data_dir)) as server:
        answer = post_batch(server, [*good_batch(), deep])
        assert answer.status_code == 200, answer.text
        assert (answer.json()["accepted"], rejected(answer)) == (10, [(10, "too_deep")])
        assert answer.json()["rejected"][0]["messageId"] == "deep"
        assert "more than 64 levels" in answer.json()["rejected"][0]["reason"]
        # at the limit is fine: the event is level 1, properties level 2, ... 64
        assert post_batch(server, [track("edge", properties=nested(63))]).json() == {"success": True}
    assert [line["messageId"] for line in landed_lines(data_dir)] == [f"good{i}" for i in range(10)] + ["edge"]


def test_the_depth_limit_is_a_setting_and_a_deep_batch_context_refuses_the_request(data_dir):
    with ThreadServer(settings_for(data_dir, max_json_depth=4)) as server:
        answer = post_batch(server, [track("ok", properties={"a": {"b": 1}}), track("deep", properties=nested(4))])
        assert (answer.status_code, rejected(answer)) == (200, [(1, "too_deep")])
        context = post_batch(server, good_batch(2), context=nested(5))
        assert (context.status_code, context.json()["code"]) == (400, "too_deep")
    # a body orjson cannot parse at all (deeper than its own limit of 1024) is a 400 for the request
    with ThreadServer(settings_for(data_dir)) as server:
        body = b'{"batch": [' + b"[" * 2000 + b"]" * 2000 + b"]}"
        answer = httpx.post(server.url + "/v1/batch", auth=WEB, content=body)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_json")
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["ok"]


def test_dates_at_the_ends_of_time_are_rejections_not_errors(data_dir):
    batch = [
        *good_batch(),
        track("year1", timestamp="0001-01-01T00:00:00+05:00"),  # before year 1 in UTC
        # sentAt far ahead of the timestamp: the skew-corrected time falls before year 1
        track("skew-past", timestamp="0001-01-02T00:00:00Z", sentAt="9999-12-31T23:59:59Z"),
        # sentAt far behind: the corrected time would be past 9999
        track("skew-future", timestamp="9999-12-31T23:59:59-05:00", sentAt="0001-01-01T00:00:00Z"),
        track("year9999", timestamp="9999-12-31T23:59:59.999999-14:00"),
    ]
    with ThreadServer(settings_for(data_dir)) as server:
        answer = post_batch(server, batch)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 10
        assert rejected(answer) == [
            (10, "timestamp_before_min"),
            (11, "timestamp_before_min"),
            (12, "future_timestamp"),
            (13, "future_timestamp"),
        ]
    assert len(landed_lines(data_dir)) == 10


def test_anything_raised_while_preparing_one_event_is_an_invalid_event_rejection(caplog):
    info = RequestInfo(source="web", received_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
    with caplog.at_level(logging.WARNING, logger="collector"):
        # orjson cannot write an int of 10,000 digits (nor Python print it); called directly, prepare meets one
        outcome = prepare(track("huge", userId=10**10_000), 3, info)
    assert isinstance(outcome, Rejection)
    assert (outcome.index, outcome.code, outcome.message_id) == (3, "invalid_event", "huge")
    assert outcome.reason == "event could not be processed (TypeError)"
    assert [record.error_type for record in caplog.records] == ["TypeError"]
    assert prepare(track("key", properties={1: "not a JSON key"}), 0, info).code == "invalid_event"


# -- the lower bound on event time --------------------------------------------------------------------------------


def test_events_before_min_event_time_are_rejected_with_the_shared_reason(data_dir):
    assert MIN_EVENT_TIME_REASON == "timestamp before min_event_time"
    batch = [
        track("old", timestamp="1999-12-31T23:59:59.999Z"),
        track("first", timestamp="2000-01-01T00:00:00Z"),
        # 2026 as the client sent it, but its clock says it sent it 30 years later: corrected, it is before 2000
        track("skewed", timestamp="2026-01-01T00:00:00Z", sentAt="2056-01-01T00:00:00Z"),
        track("untimed", timestamp=None),  # no timestamp: the arrival time, always after the bound
    ]
    with ThreadServer(settings_for(data_dir)) as server:
        answer = post_batch(server, batch)
        assert (answer.status_code, answer.json()["accepted"]) == (200, 2)
        assert rejected(answer) == [(0, "timestamp_before_min"), (2, "timestamp_before_min")]
        assert answer.json()["rejected"][0]["reason"] == "timestamp before min_event_time 2000-01-01T00:00:00Z"
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["first", "untimed"]


def test_min_event_time_and_the_other_bounds_come_from_the_environment(monkeypatch, data_dir):
    defaults = CollectorSettings.from_env()
    assert defaults.min_event_time == datetime(2000, 1, 1, tzinfo=UTC)
    assert (defaults.max_json_depth, defaults.read_timeout_seconds, defaults.keep_alive_seconds) == (64, 10.0, 5.0)
    assert (defaults.max_connections, defaults.max_header_bytes) == (1000, 32 * 1024)
    assert (defaults.metrics_token, defaults.metrics_port) == (None, None)
    for name, value in {
        "MIN_EVENT_TIME": "2020-06-01T02:00:00+02:00",
        "COLLECTOR_MAX_JSON_DEPTH": "8",
        "COLLECTOR_READ_TIMEOUT_SECONDS": "2.5",
        "COLLECTOR_TIMEOUT_KEEP_ALIVE_SECONDS": "1",
        "COLLECTOR_MAX_CONNECTIONS": "50",
        "COLLECTOR_MAX_HEADER_BYTES": "4096",
        "COLLECTOR_METRICS_TOKEN": " s3cret ",
        "COLLECTOR_METRICS_PORT": "9191",
    }.items():
        monkeypatch.setenv(name, value)
    read = CollectorSettings.from_env()
    assert read.min_event_time == datetime(2020, 6, 1, tzinfo=UTC)
    assert (read.max_json_depth, read.read_timeout_seconds, read.keep_alive_seconds) == (8, 2.5, 1.0)
    assert (read.max_connections, read.max_header_bytes) == (50, 4096)
    assert (read.metrics_token, read.metrics_port) == ("s3cret", 9191)
    info = RequestInfo(source="web", received_at=datetime.now(UTC), min_event_time=read.min_event_time)
    early = prepare(track("e", timestamp="2020-05-31T23:59:59Z"), 0, info)
    assert (early.code, early.reason) == ("timestamp_before_min", f"{MIN_EVENT_TIME_REASON} 2020-06-01T00:00:00Z")
    monkeypatch.setenv("MIN_EVENT_TIME", "last tuesday")
    with pytest.raises(SettingsError, match="MIN_EVENT_TIME"):
        CollectorSettings.from_env()
    monkeypatch.delenv("MIN_EVENT_TIME")
    monkeypatch.setenv("COLLECTOR_WORKERS", "2")
    with pytest.raises(SettingsError, match="COLLECTOR_METRICS_PORT"):
        CollectorSettings.from_env()


# -- gzip: exactly one member --------------------------------------------------------------------------------------


def test_gzip_with_a_second_member_or_trailing_bytes_is_refused(data_dir):
    first = gzip.compress(orjson.dumps({"batch": [track("m1")]}))
    second = gzip.compress(orjson.dumps({"batch": [track("m2")]}))
    with ThreadServer(settings_for(data_dir)) as server:
        for body, what in [(first + second, "second member"), (first + b"garbage", "trailing bytes")]:
            answer = httpx.post(server.url + "/v1/batch", auth=WEB, content=body, headers={"Content-Encoding": "gzip"})
            assert (answer.status_code, answer.json()["code"]) == (400, "bad_gzip"), what
            assert "after the end of its gzip stream" in answer.json()["message"]
        ok = httpx.post(server.url + "/v1/batch", auth=WEB, content=first, headers={"Content-Encoding": "gzip"})
        assert ok.status_code == 200
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["m1"]


# -- /metrics ------------------------------------------------------------------------------------------------------


def test_metrics_behind_a_bearer_token(data_dir):
    with ThreadServer(settings_for(data_dir, metrics_token="s3cret")) as server:
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(server.url + "/metrics", auth=("s3cret", "")).status_code == 401  # Basic is not Bearer
        scraped = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer s3cret"})
        assert scraped.status_code == 200 and "collector_requests_total" in scraped.text
        assert httpx.get(server.url + "/health").status_code == 200


def test_metrics_on_their_own_loopback_port_and_not_on_the_ingest_port(data_dir):
    port = free_port()
    with ThreadServer(settings_for(data_dir, metrics_port=port)) as server:
        assert post_batch(server, good_batch(1)).status_code == 200
        assert httpx.get(server.url + "/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert 'collector_requests_total{endpoint="batch",status="200"} 1.0' in scraped.text
    with pytest.raises(httpx.ConnectError):  # stopped with the collector
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)


# -- slow and flooding connections ---------------------------------------------------------------------------------


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the server sends until it closes (or `limit` seconds pass), and when it closed."""
    started, received = time.monotonic(), b""
    sock.settimeout(0.1)
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def test_a_dripping_connection_is_closed_after_the_read_timeout_while_others_are_served(data_dir):
    with ThreadServer(settings_for(data_dir, read_timeout_seconds=1.0)) as server:
        drip = socket.create_connection(("127.0.0.1", server.port))
        silent = socket.create_connection(("127.0.0.1", server.port))
        body = socket.create_connection(("127.0.0.1", server.port))
        try:
            started = time.monotonic()
            body.sendall(b"POST /v1/batch HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{")
            drip.settimeout(0.1)
            answer, closed_at = b"", None
            for count, byte in enumerate(b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40):
                if count == 3:  # meanwhile a real client on another connection is answered
                    assert post_batch(server, good_batch(2)).status_code == 200
                try:
                    drip.send(bytes([byte]))
                    answer = drip.recv(4096)  # waits 0.1 s: one byte every 0.1 s or so
                except TimeoutError:
                    continue
                except OSError:
                    pass
                closed_at = time.monotonic() - started
                break
            assert closed_at is not None and 0.9 <= closed_at <= 2.0, closed_at
            assert answer.startswith(b"HTTP/1.1 408 ")
            # a connection that never sent a byte was closed too, and one stuck mid-body
            assert read_until_closed(silent, 1.0)[0].startswith(b"HTTP/1.1 408 ")
            assert read_until_closed(body, 1.0)[0] == b""
            assert post_batch(server, good_batch(1)).status_code == 200
        finally:
            for sock in (drip, silent, body):
                sock.close()


def test_oversized_headers_are_refused(data_dir):
    with ThreadServer(settings_for(data_dir, max_header_bytes=2048)) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for _ in range(4):  # 2,100 bytes, each piece read on its own; nothing sent after the bound
                time.sleep(0.02)
                sock.sendall(b"X-Filler: " + b"f" * 500 + b"\r\n")
            answer, _ = read_until_closed(sock, 2.0)
        assert answer.startswith(b"HTTP/1.1 431 ")
        # the same headers under the bound are fine
        assert httpx.get(server.url + "/health", headers={"X-Filler": "f" * 1500}).status_code == 200


def test_connections_beyond_the_cap_are_refused_at_once_and_served_again_once_the_idle_ones_time_out(data_dir):
    with ThreadServer(settings_for(data_dir, max_connections=5, read_timeout_seconds=1.0)) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        try:
            time.sleep(0.1)
            started = time.monotonic()
            with pytest.raises(httpx.HTTPError):
                # the server answers 503 and closes before the request is read; the client sees either
                answer = post_batch(server, good_batch(1))
                assert answer.status_code == 503
                raise httpx.HTTPError("503")
            assert time.monotonic() - started < 0.5
            for sock in idle:
                assert read_until_closed(sock, 2.0)[0].startswith(b"HTTP/1.1 408 ")
            assert post_batch(server, good_batch(1)).status_code == 200
        finally:
            for sock in idle:
                sock.close()
    assert len(landed_lines(data_dir)) == 1


# -- property-based ------------------------------------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 2, 9, 0, 0, 123_456, tzinfo=UTC)
INFO = RequestInfo(source="web", received_at=RECEIVED, max_depth=16)
TOLERANCE = timedelta(hours=24)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # huge ints too
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=40,
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-14), "-14")])
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=zones)
near_moments = st.datetimes(
    min_value=datetime(1998, 1, 1), max_value=datetime(2027, 12, 31), timezones=zones | st.none()
)
times = (
    moments.map(datetime.isoformat)
    | near_moments.map(datetime.isoformat)
    | st.text(max_size=30)
    | st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-14:00", "2026-11-02T09:00:00Z"])
    | json_values
)
ids = st.text(max_size=12) | st.integers(min_value=-(2**63), max_value=2**64 - 1) | json_values
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4) | st.integers(0, 40).map(nested) | json_values


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


event_shaped = optional(
    type=st.sampled_from(["track", "page", "screen", "identify", "group", "alias", "Track ", "purchase"]) | json_values,
    messageId=ids,
    userId=ids,
    anonymousId=ids,
    event=st.sampled_from(["Product Viewed", "!!", ""]) | st.text(max_size=30) | json_values,
    timestamp=times,
    sentAt=times,
    properties=objects,
    traits=objects,
    context=objects,
    name=st.text(max_size=10),
)


def check_outcome(outcome: Accepted | Rejection, index: int, info: RequestInfo) -> None:
    if isinstance(outcome, Rejection):
        assert outcome.index == index and outcome.code and outcome.reason
        orjson.dumps(outcome.as_json())
        return
    assert isinstance(outcome, Accepted)
    if outcome.line is None:
        assert outcome.type in {"group", "alias"}
        return
    line = orjson.loads(outcome.line)
    stamp = datetime.fromisoformat(line["timestamp"])
    assert info.min_event_time <= stamp <= info.received_at + info.future_tolerance
    assert line["receivedAt"] == info.received_text and line["messageId"]


@hypothesis_settings(max_examples=200, deadline=None)
@given(raw=json_values, forced=st.sampled_from([None, "track", "identify"]))
def test_prepare_never_raises_on_any_json_value(raw: Any, forced: str | None) -> None:
    check_outcome(prepare(raw, 7, INFO, forced), 7, INFO)


@hypothesis_settings(max_examples=200, deadline=None)
@given(raw=event_shaped, batch_sent_at=st.none() | times)
def test_prepare_never_raises_on_event_shaped_dicts(raw: dict[str, Any], batch_sent_at: Any) -> None:
    info = RequestInfo(source="web", received_at=RECEIVED, sent_at=batch_sent_at, max_depth=16)
    check_outcome(prepare(raw, 0, info), 0, info)


def http_safe(value: Any) -> Any:
    """What JSON on the wire can carry: no NaN or infinity, integers in 64 bits (as orjson writes and reads them)."""
    if type(value) is dict:
        return {key: http_safe(item) for key, item in value.items()}
    if type(value) is list:
        return [http_safe(item) for item in value]
    if type(value) is float and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if type(value) is int and not -(2**63) <= value < 2**64:
        return str(value)[:20] if value.bit_length() < 10_000 else "huge"
    return value


batches = st.lists(event_shaped | st.just(track("valid")) | json_values, max_size=12).map(http_safe)


def test_the_request_path_answers_200_or_400_and_accounts_for_every_event(data_dir):
    with ThreadServer(settings_for(data_dir, max_json_depth=16)) as server, httpx.Client(auth=WEB) as client:

        @hypothesis_settings(
            max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
        )
        @given(batch=batches, sent_at=st.none() | times.map(http_safe), gzipped=st.booleans())
        def check(batch: list[Any], sent_at: Any, gzipped: bool) -> None:
            document: dict[str, Any] = {"batch": batch, "messageId": uuid.uuid4().hex}
            if sent_at is not None:
                document["sentAt"] = sent_at
            body = orjson.dumps(document)
            headers = {"Content-Type": "application/json"}
            if gzipped:
                body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
            answer = client.post(server.url + "/v1/batch", content=body, headers=headers)
            assert answer.status_code in (200, 400), answer.text
            payload = answer.json()
            rejected_count = payload.get("rejected_count", 0)
            accepted = payload.get("accepted", len(batch) if answer.status_code == 200 and not rejected_count else 0)
            assert accepted + rejected_count == len(batch), payload
            assert len(payload.get("rejected", [])) == min(rejected_count, 100)

        check()
        metrics = client.get(server.url + "/metrics").text
    assert 'status="500"' not in metrics
    for line in landed_lines(data_dir):
        assert EARLIEST <= datetime.fromisoformat(line["timestamp"]) <= datetime.now(UTC) + TOLERANCE
