"""The live path (live/): the consumer folds spool files into per-user state in a real Redis, exactly once.

Profiles are checked against cells computed by hand, and on generated traffic against an independent DuckDB
recomputation from the same files; a consumer killed with SIGKILL resumes without applying any line twice or
missing one, and a replay rebuilds the same state.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
from redis import Redis

from live.consumer import Consumer
from live.erase import erase_ids, erase_live_state
from live.profiles import ProfileReader
from live.traits import refresh_traits
from settings import Settings
from stores.registry import unregistered_keys
from tests.collector_server import ROOT, ThreadServer
from tests.redis_server import redis_server

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
GAP_MS = 30 * 60_000


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def live_settings(data_dir: Path, redis_url: str, prefix: str, **env: str) -> Settings:
    return Settings.from_env({"DATA_DIR": str(data_dir), "LIVE_REDIS_URL": redis_url, "LIVE_KEY_PREFIX": prefix, **env})


def record(message_id: str, at: datetime, kind: str = "track", event: str | None = None, **fields) -> dict:
    """A line as the collector spools it."""
    line = {"messageId": message_id, "type": kind, "timestamp": at.isoformat().replace("+00:00", "Z")}
    if event is not None:
        line["event"] = event
    return line | fields


def land(data_dir: Path, name: str, lines: list) -> Path:
    folder = data_dir / "landing" / "collector"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events-{name}.jsonl"
    with open(path, "wb") as handle:
        for line in lines:
            handle.write((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n")
    return path


def consume_all(settings: Settings) -> Consumer:
    consumer = Consumer(settings)
    while consumer.poll():
        pass
    return consumer


def reader(consumer: Consumer) -> ProfileReader:
    return ProfileReader(consumer.redis, consumer.keys, GAP_MS)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_profile_computed_by_hand(tmp_path: Path, redis_url: str):
    a1, u1 = {"anonymousId": "a1"}, {"userId": "u1"}
    land(tmp_path, "20260310T120000000000Z-p1-000001", [
        record("m01", at("2026-03-10T11:00:00"), "page", **a1),
        record("m02", at("2026-03-10T11:05:00"), event="Product Viewed", properties={"product_id": "p1"}, **a1),
        record("m03", at("2026-03-10T11:06:00"), event="Product Added",
               properties={"product_id": "p1", "price": 10, "quantity": 2}, **a1),
        record("m04", at("2026-03-10T11:10:00"), "identify", userId="u1", anonymousId="a1"),
        record("m05", at("2026-03-10T11:20:00"), event="Product Added",
               properties={"product_id": "p2", "price": 5}, **u1),
        record("m06", at("2026-03-10T11:30:00"), event="Order Completed", properties={"revenue": 25}, **u1),
        record("m07", at("2026-03-10T11:55:00"), event="productAdded",
               properties={"product_id": "p3", "price": "7.5"}, **u1),
        record("m08", at("2026-03-10T11:56:00"), event="Product Added", properties={"product_id": "p4"}, **u1),
        record("m09", at("2026-03-10T11:57:00"), event="Product Removed", properties={"product_id": "p4"}, **u1),
    ])  # fmt: skip
    land(tmp_path, "20260310T120000000000Z-p2-000001", [
        record("m10", at("2026-03-10T11:58:00"), event="Product Viewed", properties={"product_id": "p9"}, **u1),
        record("m11", at("2026-03-09T20:00:00"), "page", **u1),
        record("m12", at("2026-03-09T11:00:00"), "page", **u1),  # over a day and a session gap before the newest
        record("m07", at("2026-03-10T11:55:00"), event="productAdded",  # an SDK's retry of m07
               properties={"product_id": "p3", "price": "7.5"}, **u1),
    ])  # fmt: skip
    consumer = consume_all(live_settings(tmp_path, redis_url, "byhand"))
    consumer.maintain(NOW_MS)
    profile = consumer.reader.read("u1", NOW_MS)
    assert profile == {
        "user_id": "u1",
        "anonymous_ids": ["a1"],
        "as_of": "2026-03-10T12:00:00Z",
        "last_seen_at": "2026-03-10T11:58:00Z",
        "last_event": "product_viewed",
        # (11:50, 12:00]: m07 (once), m08, m09, m10; (11:00, 12:00]: m02 - m10; the day adds m01 and m11
        "events": {"10m": 4, "1h": 9, "1d": 11},
        # 20:00 the evening before, then 11:00 - 11:58 (no 30-minute gap: 11:30 -> 11:55 is 25 minutes)
        "sessions": {"10m": 1, "1h": 1, "1d": 2},
        "last_product_viewed": {"product_id": "p9", "at": "2026-03-10T11:58:00Z"},
        "last_order_at": "2026-03-10T11:30:00Z",
        # p1 and p2 were ordered at 11:30, p4 removed after it was added; p3's price came as text
        "cart": {
            "items": [{"product_id": "p3", "quantity": 1, "price": 7.5, "added_at": "2026-03-10T11:55:00Z"}],
            "value": 7.5,
            "items_without_price": 0,
        },
        # live/definitions.yml's hot_cart: a product viewed (11:58) and one added (11:55, 11:56) within 10 minutes,
        # evaluated at the user's newest event; it holds until 12:06, when the 11:56 add leaves the window
        "segments": {"hot_cart": "2026-03-10T11:58:00Z"},
        "traits": {},
        "experiments": {},
    }
    assert consumer.redis.zscore(consumer.keys.until, "hot_cart\x1fu1") == NOW_MS + 6 * 60_000
    assert consumer.reader.read("a1", NOW_MS) == profile  # an anonymous id reads its user's profile
    assert reader(consumer).read("nobody", NOW_MS) is None
    redis = consumer.redis
    assert redis.zscore(consumer.keys.events("u1"), "m12") is None  # trimmed: older than a day and a gap
    assert int(redis.get(consumer.keys.applied)) == 13  # every line, the retry included (it changed nothing)
    assert consumer.stats.skipped == 0


def test_every_live_key_is_registered_and_an_erasure_leaves_no_trace_of_the_user(tmp_path: Path, redis_url: str):
    land(tmp_path, "20260310T120000000000Z-p1-000001", [
        record("k1", at("2026-03-10T11:00:00"), event="Product Added", anonymousId="a7",
               properties={"product_id": "p"}),
        record("k2", at("2026-03-10T11:01:00"), "identify", userId="u7", anonymousId="a7"),
        record("k3", at("2026-03-10T11:02:00"), event="Product Removed", userId="u7", properties={"product_id": "p"}),
        record("k4", at("2026-03-10T11:03:00"), event="Product Viewed", userId="u8", properties={"product_id": "p"}),
        record("k5", at("2026-03-10T11:04:00"), event="Product Viewed", userId="u7", properties={"product_id": "q"}),
    ])  # fmt: skip
    consumer = consume_all(live_settings(tmp_path, redis_url, "erase"))
    consumer.maintain(int(at("2026-03-10T11:05:00").timestamp() * 1000))  # u7 is in hot_cart (a7's add, u7's view)
    redis = consumer.redis
    # and what the batch knows: both users' traits, variants and recommendations, the popular products
    with duckdb.connect(str(tmp_path / "serving.duckdb")) as con:
        con.execute("create schema marts; create schema ml; create schema meta")
        con.execute("create table meta.publish as select timestamp '2026-03-10 11:00:00' as published_at")
        con.execute("create table marts.experiment_assignments as select * from (values ('u7', 'e', 'b', now()), "
                    "('u8', 'e', 'a', now())) as t(user_id, experiment_id, variant, exposed_at)")  # fmt: skip
        con.execute("create table ml.recommendations as select * from (values ('u7', 1, 'p', 0.5, 'item_item', '1'), "
                    "('u8', 1, 'q', 0.5, 'item_item', '1')) as t(user_id, rank, product_id, score, source, "
                    "model_version)")  # fmt: skip
        con.execute("create table ml.popular_products as select '(all)' as segment, 1 as rank, 'p' as product_id, "
                    "2 as users, '1' as model_version")  # fmt: skip
    assert refresh_traits(redis, consumer.keys, tmp_path / "serving.duckdb", 3600) == 2
    keys = sorted(key.decode() for key in redis.scan_iter(match="erase:*"))
    assert "erase:m:hot_cart" in keys and "erase:transitions" in keys and "erase:carts_due" in keys
    assert {"erase:t:u7", "erase:rec:u7", "erase:popular", "erase:traits_version"} <= set(keys)
    assert unregistered_keys(keys, "erase") == []
    assert erase_ids(redis, consumer.keys, ["u7"]) > 8
    assert reader(consumer).read("u7", NOW_MS) is None and reader(consumer).read("a7", NOW_MS) is None
    left = str(state_dump(redis, "erase", streams=True))
    assert "u7" not in left and "a7" not in left and "u8" in left
    assert reader(consumer).read("u8", NOW_MS)["last_product_viewed"]["product_id"] == "p"
    kept = reader(consumer).recommendations("u8", 5)["recommendations"]
    assert kept == [{"rank": 1, "product_id": "q", "score": 0.5}]
    assert erase_live_state("redis://127.0.0.1:1/0", "erase", ["u8"]) == {"reachable": False}


def test_hostile_lines_are_skipped_with_their_place_and_reason_and_the_rest_applies(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
):
    long_id = "x" * 300
    path = land(tmp_path, "20260310T120000000000Z-p1-000001", [
        b"{not json",
        b"[1, 2, 3]",
        record("h1", at("2026-03-10T11:00:00"), event="Product Added", userId={"$ne": 1}),
        record("h2", at("2026-03-10T11:00:00"), event="Product Added", userId=long_id),
        {"messageId": "h3", "type": "track", "event": "Page", "userId": "u2", "timestamp": "yesterday"},
        record("h4", at("2026-03-10T11:01:00"), event="Product Added", userId="u2",
               properties={"product_id": long_id, "price": 3}),
        record("h5", at("2026-03-10T11:02:00"), event="Product Added", userId="u2",
               properties={"product_id": "p1", "price": "NaN", "quantity": 1e12}),
        record("h6", at("2026-03-10T11:03:00"), event="Product Added", userId="u2",
               properties={"product_id": ["p2"], "price": -4}),
        record("h7", at("2026-03-10T11:04:00"), event="Product Added", userId="u2", properties="not an object"),
    ])  # fmt: skip
    with caplog.at_level("WARNING", logger="live.consumer"):
        consumer = consume_all(live_settings(tmp_path, redis_url, "hostile"))
    assert consumer.stats.skip_reasons == {
        "not JSON": 1,
        "not a JSON object": 1,
        "userId is not a string": 1,
        "userId is longer than 200 characters": 1,
        "no readable timestamp": 1,
    }
    assert f"skipped {path.name} byte 0: not JSON" in caplog.text
    assert f"skipped {path.name} byte 10: not a JSON object" in caplog.text
    profile = reader(consumer).read("u2", NOW_MS)
    assert profile["events"]["1h"] == 4  # h4 - h7: each event counts; only what it cannot be is dropped
    # h4's product id is too long to be a key, h6's is not text; h5's price and quantity are out of bounds
    assert profile["cart"] == {
        "items": [{"product_id": "p1", "quantity": 1, "price": None, "added_at": "2026-03-10T11:02:00Z"}],
        "value": 0,
        "items_without_price": 1,
    }
    assert consumer.tail.offsets[path.name] == path.stat().st_size


def test_events_through_the_real_collector_are_applied_once_while_spooled_and_after_rotation(
    tmp_path: Path, redis_url: str
):
    settings = live_settings(tmp_path, redis_url, "collector", COLLECTOR_ROTATE_SECONDS="0.5")
    consumer = Consumer(settings)
    with ThreadServer(settings.collector) as server:
        for n in range(5):
            batch = [{"type": "track", "event": "Product Viewed", "userId": f"c{n}", "messageId": f"c{n}-{i}",
                      "properties": {"product_id": f"p{i}"}} for i in range(20)]  # fmt: skip
            assert httpx.post(server.url + "/v1/batch", json={"batch": batch}, auth=("dev", "")).status_code == 200
            consumer.poll()  # reads the open spool file, or the landed one, from where it was
            time.sleep(0.2)
        time.sleep(1.0)
    while consumer.poll():
        pass
    landed = sorted((tmp_path / "landing" / "collector").glob("events-*.jsonl"))
    assert landed and not list((tmp_path / "spool" / "collector").glob("*/events-*.jsonl"))
    assert int(consumer.redis.get(consumer.keys.applied)) == 100
    assert {name: offset for name, offset in consumer.tail.offsets.items()} == {
        p.name: p.stat().st_size for p in landed
    }
    assert reader(consumer).read("c3")["events"]["10m"] == 20


def generated_traffic(data_dir: Path, files: int = 4, per_file: int = 5000, seed: int = 11) -> list[Path]:
    """Events of 300 users (half first anonymous, identified later) over two days before NOW, in `files` files."""
    rng = random.Random(seed)
    names = ["Product Viewed", "Product Added", "Product Removed", "Order Completed", "Signed In"]
    weights = [40, 20, 5, 5, 10]
    paths = []
    count = 0
    for f in range(files):
        lines = []
        for _ in range(per_file):
            count += 1
            user = rng.randrange(300)
            moment = NOW - timedelta(seconds=rng.randrange(2 * 86_400))
            ids = {"userId": f"u{user}"}
            if user % 2 and rng.random() < 0.5:
                ids = {"anonymousId": f"a{user}"}
            elif user % 2 and rng.random() < 0.2:
                ids = {"userId": f"u{user}", "anonymousId": f"a{user}"}
            if rng.random() < 0.15:
                lines.append(record(f"g{count}", moment, "page", **ids))
                continue
            properties = {"product_id": f"p{rng.randrange(30)}", "quantity": rng.randrange(1, 4)}
            if rng.random() < 0.8:
                properties["price"] = rng.randrange(100, 5000) / 100
            lines.append(
                record(f"g{count}", moment, event=rng.choices(names, weights)[0], properties=properties, **ids)
            )
        paths.append(land(data_dir, f"20260310T1{f}0000000000Z-p{f}-000001", lines))
    return paths


# The same profiles from the files by SQL: stitching, windows, sessions, cart and last values, written apart from
# live/ (no code shared).
RECOMPUTED_SQL = """
with lines as (
    select * from read_json($files, format = 'newline_delimited', columns = {
        messageId: 'varchar', type: 'varchar', event: 'varchar', userId: 'varchar', anonymousId: 'varchar',
        "timestamp": 'timestamptz', properties: 'json'})
),
events as (
    select messageId as message_id, userId as user_id, anonymousId as anonymous_id,
        coalesce(userId, anonymousId) as subject,
        epoch_ms("timestamp") as at_ms,
        case when type = 'page' then 'page_viewed' else lower(replace(event, ' ', '_')) end as name,
        properties ->> 'product_id' as product_id,
        try_cast(properties ->> 'price' as double) as price,
        coalesce(try_cast(properties ->> 'quantity' as integer), 1) as quantity
    from lines
),
links as (select distinct anonymous_id, user_id from events where user_id is not null and anonymous_id is not null),
owned as (
    select e.*, coalesce(l.user_id, e.subject) as owner
    from events e left join links l on e.user_id is null and e.anonymous_id = l.anonymous_id
),
distinct_events as (select distinct owner, message_id, at_ms from owned where at_ms <= $now),
sessions as (
    select owner, at_ms,
        sum(case when previous is null or at_ms - previous >= $gap then 1 else 0 end)
            over (partition by owner order by at_ms, message_id) as session
    from (select *, lag(at_ms) over (partition by owner order by at_ms, message_id) as previous from distinct_events)
),
session_ends as (select owner, session, max(at_ms) as last_ms from sessions group by all),
last_order as (select owner, max(at_ms) as order_ms from owned where name = 'order_completed' group by all),
latest_adds as (
    select owner, product_id, arg_max(quantity, (at_ms, message_id)) as quantity,
        arg_max_null(price, (at_ms, message_id)) as price, max(at_ms) as added_ms
    from owned where name = 'product_added' group by all
),
removals as (select owner, product_id, max(at_ms) as removed_ms from owned where name = 'product_removed' group by all),
carts as (
    select a.owner, list(a.product_id order by a.product_id) as products,
        sum(a.quantity * coalesce(a.price, 0)) as value
    from latest_adds a
    left join last_order o using (owner)
    left join removals r using (owner, product_id)
    where a.added_ms > coalesce(o.order_ms, -1) and a.added_ms > coalesce(r.removed_ms, -1)
    group by all
)
select
    owners.owner,
    (select count(*) from distinct_events d where d.owner = owners.owner and d.at_ms > $now - 600000),
    (select count(*) from distinct_events d where d.owner = owners.owner and d.at_ms > $now - 3600000),
    (select count(*) from distinct_events d where d.owner = owners.owner and d.at_ms > $now - 86400000),
    (select count(*) from session_ends s where s.owner = owners.owner and s.last_ms > $now - 600000),
    (select count(*) from session_ends s where s.owner = owners.owner and s.last_ms > $now - 3600000),
    (select count(*) from session_ends s where s.owner = owners.owner and s.last_ms > $now - 86400000),
    (select max(at_ms) from owned o where o.owner = owners.owner),
    coalesce(carts.products, []),
    round(coalesce(carts.value, 0), 2)
from (select distinct owner from owned where owner like 'u%') as owners
left join carts using (owner)
order by owners.owner
"""


def test_profiles_equal_a_recomputation_from_the_same_files(tmp_path: Path, redis_url: str):
    paths = generated_traffic(tmp_path)
    consumer = consume_all(live_settings(tmp_path, redis_url, "recompute", LIVE_BATCH_EVENTS="777"))
    expected = duckdb.sql(
        RECOMPUTED_SQL, params={"files": [str(p) for p in paths], "now": NOW_MS, "gap": GAP_MS}
    ).fetchall()
    assert len(expected) == 300
    profiles = reader(consumer)
    for owner, e10, e1h, e1d, s10, s1h, s1d, last_ms, products, value in expected:
        profile = profiles.read(owner, NOW_MS)
        got = (
            profile["events"],
            profile["sessions"],
            profile["last_seen_at"],
            [item["product_id"] for item in profile["cart"]["items"]],
            profile["cart"]["value"],
        )
        last_seen = datetime.fromtimestamp(last_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        assert got == (
            {"10m": e10, "1h": e1h, "1d": e1d},
            {"10m": s10, "1h": s1h, "1d": s1d},
            last_seen,
            products,
            pytest.approx(value),
        ), owner
    assert int(consumer.redis.get(consumer.keys.applied)) == 20_000


def state_dump(redis: Redis, prefix: str, streams: bool = False) -> dict:
    """Every key of the prefix with its value (not its TTL); streams (the transitions log, whose ids are arrival
    times) only when asked, as their entries' fields."""
    dump = {}
    for key in redis.scan_iter(match=f"{prefix}:*"):
        kind = redis.type(key)
        if kind == b"stream":
            if streams:
                dump[key] = [fields for _, fields in redis.xrange(key)]
            continue
        if kind == b"hash":
            dump[key] = redis.hgetall(key)
        elif kind == b"zset":
            dump[key] = redis.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            dump[key] = redis.smembers(key)
        else:
            dump[key] = redis.get(key)
    return dump


def test_a_consumer_killed_mid_batch_resumes_exactly_and_a_replay_rebuilds_the_same_state(
    tmp_path: Path, redis_url: str
):
    paths = generated_traffic(tmp_path, files=4, per_file=10_000, seed=5)
    env = {
        **os.environ, "DATA_DIR": str(tmp_path), "LIVE_REDIS_URL": redis_url, "LIVE_KEY_PREFIX": "killed",
        "LIVE_BATCH_EVENTS": "50",
    }  # fmt: skip
    redis = Redis.from_url(redis_url)
    consumer = subprocess.Popen([sys.executable, "-m", "live", "consume"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while int(redis.get("killed:applied") or 0) < 5_000:
        assert time.monotonic() < deadline and consumer.poll() is None, consumer.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    consumer.send_signal(signal.SIGKILL)
    consumer.wait()
    stopped_at = int(redis.get("killed:applied"))
    assert 5_000 <= stopped_at < 40_000
    finished = subprocess.run(
        [sys.executable, "-m", "live", "consume", "--once"], cwd=ROOT, env=env, capture_output=True, check=True
    )
    # the restart applied exactly the lines the killed consumer had not committed
    assert json.loads(finished.stdout.splitlines()[-1])["applied"] == 40_000 - stopped_at
    assert int(redis.get("killed:applied")) == 40_000
    assert redis.hgetall("killed:offsets") == {p.name.encode(): str(p.stat().st_size).encode() for p in paths}
    resumed = state_dump(redis, "killed")
    subprocess.run(
        [sys.executable, "-m", "live", "consume", "--replay", "--once"], cwd=ROOT, env=env, capture_output=True,
        check=True,
    )  # fmt: skip
    assert state_dump(redis, "killed") == resumed


def test_a_line_longer_than_the_read_bound_is_skipped_and_the_next_line_applies(tmp_path: Path, redis_url: str):
    huge = b'{"messageId": "x", "junk": "' + b"z" * 100_000 + b'"}'
    good = record(
        "after", at("2026-03-10T11:00:00"), event="Product Viewed", userId="u9", properties={"product_id": "p"}
    )
    land(tmp_path, "20260310T120000000000Z-p1-000001", [huge, good])
    consumer = consume_all(live_settings(tmp_path, redis_url, "long", LIVE_MAX_READ_BYTES=str(64 * 1024)))
    # the first 64 KiB are dropped unread, the rest of the line is no JSON; the line after it is whole
    assert consumer.tail.skipped_long_lines == 1 and consumer.stats.skip_reasons == {"not JSON": 1}
    assert reader(consumer).read("u9", NOW_MS)["last_product_viewed"]["product_id"] == "p"


def test_the_consumer_waits_for_a_redis_that_is_still_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    from redis.exceptions import ConnectionError as RedisConnectionError

    from live.__main__ import wait_for_redis
    from tests.collector_server import free_port

    port = free_port()
    redis = Redis(host="127.0.0.1", port=port)
    monkeypatch.setattr("live.__main__.REDIS_START_SECONDS", 0.3)
    with pytest.raises(RedisConnectionError):
        wait_for_redis(redis)  # nothing listens: given up after the start bound
    monkeypatch.setattr("live.__main__.REDIS_START_SECONDS", 10)
    later = subprocess.Popen(
        ["sh", "-c", f"sleep 1; exec {shutil.which('redis-server')} --port {port} --bind 127.0.0.1 --save '' "
         f"--appendonly no --dir {tmp_path}"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        started = time.monotonic()
        wait_for_redis(redis)  # make dev starts Redis and the consumer together
        assert 0.5 < time.monotonic() - started < 10
    finally:
        later.terminate()
        later.wait(timeout=10)
