"""Live segments and triggers (live/definitions.py, membership.py, delivery.py) on a real Redis and real HTTP:
memberships with their entry and exit times computed by hand, batch traits from a real serving copy, abandoned carts,
and triggers posted once per entry across a SIGKILL of the consumer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx
import pytest
from redis import Redis

from activation.webhook import SIGNATURE_HEADER, verify_signature
from live.consumer import Consumer
from live.definitions import DefinitionError, parse_definitions
from tests.collector_server import ROOT, ProcessServer
from tests.redis_server import redis_server
from tests.test_live import at, land, live_settings, record

SECRET = "live-secret"
DEFINITIONS = """
segments:
  - name: big_basket
    all:
      - {event: product_added, window: 10m, min_count: 2, where: [{property: price, op: gte, value: 20}]}
  - name: mobile_or_champion
    any:
      - {event: page_viewed, window: 1h, where: [{property: device, op: in, value: [ios, android]}]}
      - {trait: rfm_segment, in: [champions]}
triggers:
  - {name: abandoned, kind: cart_abandoned, after: 30m}
  - {name: big_basket_entered, kind: segment_entered, segment: big_basket}
"""


def ms(text: str) -> int:
    return int(at(text).timestamp() * 1000)


class Receiver:
    """A webhook endpoint that checks signatures, records each request's Idempotency-Key and body, and can hold
    its answer to the first request for `first_delay` seconds."""

    def __init__(self, first_delay: float = 0.0) -> None:
        self.keys: list[str] = []
        self.bodies: list[dict] = []
        self.received_at: list[float] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not verify_signature(body, self.headers.get(SIGNATURE_HEADER), SECRET):
                    receiver.bad_signatures += 1
                receiver.received_at.append(time.time())
                receiver.keys.append(self.headers["Idempotency-Key"])
                receiver.bodies.append(json.loads(body))
                if len(receiver.keys) == 1 and first_delay:
                    time.sleep(first_delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("segments: [{name: Hot, all: [{event: a, window: 1m}]}]", "segments[0].name 'Hot' is not a name"),
        ("segments: [{name: hot, all: [{event: a, window: 2w}]}]",
         "live segment 'hot': all[0].window '2w' is not a duration"),
        ("segments: [{name: hot, all: [{event: a, window: 2d}]}]", "all[0].window is longer than a day"),
        ("segments: [{name: hot, any: [{event: a, window: 1m, where: [{property: p, op: like, value: x}]}]}]",
         "live segment 'hot': any[0].where[0].op 'like' is not one of eq, neq, in"),
        ("segments: [{name: hot, all: [{trait: shoe_size, in: [9]}]}]", "all[0].trait 'shoe_size' is not one of"),
        ("segments: [{name: hot, all: [], any: []}]", "live segment 'hot': give exactly one of all (AND) or any"),
        ("triggers: [{name: t, kind: segment_entered, segment: nope}]",
         "live trigger 't': segment 'nope' is not a live segment of this file"),
        ("triggers: [{name: t, kind: cart_abandoned, after: soon}]",
         "live trigger 't': after 'soon' is not a duration"),
        ("segments: {name: x}", "segments and triggers must be lists"),
    ],
)  # fmt: skip
def test_a_bad_definition_is_refused_naming_the_segment_and_the_field(document: str, message: str):
    with pytest.raises(DefinitionError, match=None) as refused:
        parse_definitions(document)
    assert message in str(refused.value)


def serving_copy(path: Path, published_at: str, rfm: dict[str, str]) -> None:
    """A serving copy with the tables the traits come from (the columns they read)."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema ml; create schema meta")
        con.execute("create table meta.publish as select ?::timestamp as published_at", [published_at])
        con.execute("create table marts.user_segments (user_id varchar, rfm_segment varchar, lifecycle_stage varchar)")
        con.executemany("insert into marts.user_segments values (?, ?, 'active')", list(rfm.items()))
        con.execute("create table ml.user_clusters (user_id varchar, cluster_name varchar)")
        con.execute("create table ml.churn_scores (user_id varchar, risk_tier varchar)")
        con.execute("insert into ml.churn_scores values ('u2', 'high')")


def test_memberships_traits_and_abandoned_carts_computed_by_hand(tmp_path: Path, redis_url: str):
    definitions = tmp_path / "live.yml"
    definitions.write_text(DEFINITIONS)
    receiver = Receiver()
    settings = live_settings(
        tmp_path, redis_url, "byhand", LIVE_DEFINITIONS_FILE=str(definitions), ACTIVATION_WEBHOOK_URL=receiver.url,
        ACTIVATION_WEBHOOK_SECRET=SECRET, LIVE_TRIGGER_MAX_AGE_SECONDS="300", LIVE_TRAITS_CHECK_SECONDS="0",
    )  # fmt: skip
    u1 = {"userId": "u1"}
    land(tmp_path, "20260310T100000000000Z-p1-000001", [
        record("b1", at("2026-03-10T10:00:00"), event="Product Added", properties={"product_id": "p1", "price": 25},
               **u1),
        record("b2", at("2026-03-10T10:04:00"), event="Product Added", properties={"product_id": "p2", "price": 5},
               **u1),
        record("b3", at("2026-03-10T10:06:00"), event="Product Added", properties={"product_id": "p3", "price": "30"},
               **u1),
        record("b4", at("2026-03-10T09:50:00"), "page", properties={"device": "desktop"}, userId="u2"),
    ])  # fmt: skip
    consumer = Consumer(settings)
    consumer.tail.landing_rescan_seconds = 0  # files are put straight into landing here, not rotated from a spool
    redis = consumer.redis
    consumer.poll()
    consumer.maintain(ms("2026-03-10T10:06:30"))
    # two adds of at least 20 within 10 minutes (10:00, 10:06): in at 10:06, until 10:10 when the 10:00 one leaves
    assert redis.hgetall("byhand:m:big_basket") == {b"u1": str(ms("2026-03-10T10:06:00")).encode()}
    assert redis.zscore("byhand:until", "big_basket\x1fu1") == ms("2026-03-10T10:10:00")
    land(tmp_path, "20260310T102000000000Z-p1-000002", [
        record("b5", at("2026-03-10T10:20:00"), "page", properties={"device": "ios"}, **u1),
    ])  # fmt: skip
    consumer.poll()
    serving_copy(tmp_path / "serving.duckdb", "2026-03-10 10:30:00", {"u1": "loyal", "u2": "champions"})
    consumer.maintain(ms("2026-03-10T10:40:00"))
    assert redis.hgetall("byhand:m:big_basket") == {}
    assert redis.hgetall("byhand:m:mobile_or_champion") == {
        b"u1": str(ms("2026-03-10T10:20:00")).encode(),  # the iOS page view; holds until 11:20
        b"u2": str(ms("2026-03-10T09:50:00")).encode(),  # a champion (trait), evaluated at its newest event
    }
    assert redis.zscore("byhand:until", "mobile_or_champion\x1fu1") == ms("2026-03-10T11:20:00")
    assert redis.zscore("byhand:until", "mobile_or_champion\x1fu2") is None  # a trait: not by time
    transitions = [
        (f[b"kind"].decode(), f[b"segment"].decode(), f[b"user_id"].decode(), int(f[b"at_ms"]))
        for _, f in redis.xrange("byhand:transitions")
    ]
    assert transitions == [
        ("entered", "big_basket", "u1", ms("2026-03-10T10:06:00")),
        ("exited", "big_basket", "u1", ms("2026-03-10T10:10:00")),  # left when the window passed, not at 10:20
        ("entered", "mobile_or_champion", "u1", ms("2026-03-10T10:20:00")),
        ("entered", "mobile_or_champion", "u2", ms("2026-03-10T09:50:00")),
        ("cart_abandoned", "", "u1", ms("2026-03-10T10:36:00")),  # last add 10:06 + 30 minutes, no order
    ]
    profile = consumer.reader.read("u2", ms("2026-03-10T10:40:00"))
    assert profile["traits"] == {"rfm_segment": "champions", "lifecycle_stage": "active", "churn_risk_tier": "high"}
    assert profile["segments"] == {"mobile_or_champion": "2026-03-10T09:50:00Z"}
    # at 10:40 the big_basket entry (10:06) is older than LIVE_TRIGGER_MAX_AGE_SECONDS: only the cart is posted
    assert receiver.keys == [f"cart_abandoned|u1|{ms('2026-03-10T10:06:00')}"]
    assert receiver.bodies[0]["trigger"] == "abandoned" and receiver.bodies[0]["at"] == "2026-03-10T10:36:00Z"
    assert consumer.deliverer.stats.stale == 1 and receiver.bad_signatures == 0
    consumer.maintain(ms("2026-03-10T10:41:00"))
    assert len(receiver.keys) == 1  # nothing is posted twice
    receiver.close()


def test_triggers_reach_the_webhook_once_per_entry_within_seconds_across_a_sigkill(tmp_path: Path, redis_url: str):
    definitions = tmp_path / "live.yml"
    definitions.write_text("""
segments:
  - name: adding
    all: [{event: product_added, window: 1m}]
triggers:
  - {name: abandoned, kind: cart_abandoned, after: 3s}
  - {name: adding_entered, kind: segment_entered, segment: adding}
""")
    receiver = Receiver(first_delay=2.0)
    env = {
        **os.environ, "DATA_DIR": str(tmp_path), "LIVE_REDIS_URL": redis_url, "LIVE_KEY_PREFIX": "killed",
        "LIVE_DEFINITIONS_FILE": str(definitions), "ACTIVATION_WEBHOOK_URL": receiver.url,
        "ACTIVATION_WEBHOOK_SECRET": SECRET, "COLLECTOR_ROTATE_SECONDS": "1", "LIVE_POLL_SECONDS": "0.05",
    }  # fmt: skip
    consumer = subprocess.Popen([sys.executable, "-m", "live", "consume"], cwd=ROOT, env=env)
    with ProcessServer(tmp_path, **{k: v for k, v in env.items() if k.startswith("COLLECTOR")}) as collector:
        sent_at = time.time()
        batch = [{"type": "track", "event": "Product Added", "userId": "k1", "properties": {"product_id": "p"}}]
        assert httpx.post(collector.url + "/v1/batch", json={"batch": batch}, auth=("dev", "")).status_code == 200
        deadline = time.monotonic() + 15
        while not receiver.keys:  # the segment entry is being posted; the receiver holds its answer for 2 s
            assert time.monotonic() < deadline
            time.sleep(0.01)
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        consumer = subprocess.Popen([sys.executable, "-m", "live", "consume"], cwd=ROOT, env=env)
        try:
            deadline = time.monotonic() + 20
            while len(set(receiver.keys)) < 2:
                assert time.monotonic() < deadline, receiver.keys
                time.sleep(0.05)
            time.sleep(1.0)
        finally:
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=20)
    receiver.close()
    kinds = Counter(body["trigger"] for body in receiver.bodies)
    # the entry whose POST the kill cut short is posted again with the same Idempotency-Key; nothing else twice
    assert kinds == {"adding_entered": 2, "abandoned": 1}
    assert len(set(receiver.keys)) == 2 and receiver.bad_signatures == 0
    assert receiver.keys[0] == receiver.keys[1]
    cart_post = receiver.received_at[receiver.keys.index(next(k for k in receiver.keys if k.startswith("cart")))]
    assert cart_post - sent_at <= 3 + 2  # the wait, then within 2 s
    redis = Redis.from_url(redis_url)
    assert redis.zcard("killed:delivered") == 2
    assert redis.xpending("killed:transitions", "webhook")["pending"] == 0
