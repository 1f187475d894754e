"""The live segments' sizes the dashboard shows (live/segment_sizes.py), on a real Redis: memberships and transitions
made by the real consumer from events at hand-picked times, and transitions written exactly as MembershipKeeper
writes them, to check the windows' edges and the bound on the stream read."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError

from dashboard import wording
from live.consumer import Consumer
from live.definitions import parse_definitions
from live.keys import Keys
from live.segment_sizes import SegmentSizes, read_sizes
from tests.collector_server import free_port
from tests.redis_server import redis_server
from tests.test_live import land, live_settings, record

MINUTE = 60_000
HOUR = 60 * MINUTE
DEFINITIONS = """
segments:
  - name: adding
    description: added a product in the last 10 minutes
    all: [{event: product_added, window: 10m}]
  - name: browsing
    any: [{event: page_viewed, window: 1h}]
  - name: ordering
    all: [{event: order_completed, window: 10m}]
triggers:
  - {name: abandoned, kind: cart_abandoned, after: 30m}
"""


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def now_ms() -> int:
    """Now, to the second (the events' times are whole seconds before it)."""
    return int(time.time()) * 1000


def iso(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def counts(sizes: SegmentSizes) -> dict[str, tuple[int, ...]]:
    """segment -> (members, entered 1h, exited 1h, entered 24h, exited 24h)."""
    return {
        s.name: (s.members, s.entered["1h"], s.exited["1h"], s.entered["24h"], s.exited["24h"]) for s in sizes.segments
    }


def consume_live_traffic(data_dir: Path, redis_url: str, prefix: str, now: int) -> Consumer:
    """Events at hand-picked times before `now` through the real consumer, evaluated at `now`:

    adding (a product_added in 10 minutes): u1 added at now-3h (in, out at now-2h50m), u2 at now-30m (in, out at
    now-20m), u3 at now-2m (in: a member now), u4 at now-25h (in and out a day ago: written now, but by event time
    outside every window). browsing (a page in the hour): u5 at now-50m (a member now), u6 at now-90m (in, out at
    now-30m). ordering: nobody. The carts of u1, u2 and u4 are abandoned by `now` (30 minutes): stream entries that
    are not segment transitions.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    definitions = data_dir / "live.yml"
    definitions.write_text(DEFINITIONS)
    settings = live_settings(data_dir, redis_url, prefix, LIVE_DEFINITIONS_FILE=str(definitions))

    def added(message_id: str, user: str, before: int) -> dict:
        return record(message_id, iso(now - before), event="Product Added", properties={"product_id": "p1"},
                      userId=user)  # fmt: skip

    land(data_dir, "20260310T100000000000Z-p1-000001", [
        added("a1", "u1", 3 * HOUR), added("a2", "u2", 30 * MINUTE), added("a3", "u3", 2 * MINUTE),
        added("a4", "u4", 25 * HOUR),
        record("v5", iso(now - 50 * MINUTE), "page", userId="u5"),
        record("v6", iso(now - 90 * MINUTE), "page", userId="u6"),
    ])  # fmt: skip
    consumer = Consumer(settings)
    consumer.tail.landing_rescan_seconds = 0
    consumer.poll()
    consumer.maintain(now)
    return consumer


def test_sizes_of_memberships_the_real_consumer_made_computed_by_hand(tmp_path: Path, redis_url: str):
    now = now_ms()
    consumer = consume_live_traffic(tmp_path, redis_url, "sizes", now)
    kinds = [f[b"kind"] for _, f in consumer.redis.xrange("sizes:transitions")]
    assert kinds.count(b"cart_abandoned") == 3 and kinds.count(b"entered") == 6 and kinds.count(b"exited") == 4

    sizes = read_sizes(consumer.redis, Keys("sizes"), consumer.definitions, now_ms=now)
    assert counts(sizes) == {
        "adding": (1, 2, 1, 3, 2),  # u3; in: u2, u3 (hour), u1 too (day); out: u2 (hour), u1 too (day); not u4
        "browsing": (1, 1, 1, 2, 1),  # u5; in: u5 (hour), u6 too (day); out: u6 at now-30m
        "ordering": (0, 0, 0, 0, 0),
    }
    assert {s.name: s.members for s in sizes.segments} == consumer.membership.sizes()
    assert [s.description for s in sizes.segments] == ["added a product in the last 10 minutes", "", ""]
    assert sizes.events_applied == 6 and sizes.transitions_read == 13
    assert sizes.read_back_to_ms is None and sizes.partial_windows == ()
    assert sizes.rows()[0] == {
        "name": "adding", "description": "added a product in the last 10 minutes", "members": 1, "entered_1h": 2,
        "exited_1h": 1, "entered_24h": 3, "exited_24h": 2,
    }  # fmt: skip

    # an hour later: u3 and u5 have left (swept at their until, now+8m and now+10m: in that hour), the rest only in
    # the day's window
    later = now + HOUR
    consumer.maintain(later)
    assert counts(read_sizes(consumer.redis, Keys("sizes"), consumer.definitions, now_ms=later)) == {
        "adding": (0, 0, 1, 3, 3),
        "browsing": (0, 0, 1, 2, 2),
        "ordering": (0, 0, 0, 0, 0),
    }


def transition(redis: Redis, keys: Keys, stream_ms: int, kind: str, segment: str, user: str, at_ms: int) -> None:
    """What MembershipKeeper._transition writes, with the stream id's time given."""
    key = f"{segment}|{kind}|{user}|{at_ms}"
    fields = {"kind": kind, "segment": segment, "user_id": user, "at_ms": at_ms, "key": key}
    redis.xadd(keys.transitions, fields, id=f"{stream_ms}-0")


def test_window_edges_unknown_segments_carts_and_the_bound_on_the_read(redis_url: str):
    redis, keys = Redis.from_url(redis_url), Keys("edges")
    definitions = parse_definitions(DEFINITIONS)
    now = now_ms()
    planted = [
        (30 * HOUR, "entered", "adding", "u1"),  # older than the day: not even read
        (5 * HOUR, "entered", "adding", "u2"),
        (2 * HOUR, "exited", "adding", "u2"),
        (1 * HOUR, "entered", "adding", "u3"),  # exactly an hour ago: in the day, not in the hour (now - 1h, now]
        (30 * MINUTE, "entered", "adding", "u4"),
        (10 * MINUTE, "exited", "adding", "u4"),
        (5 * MINUTE, "cart_abandoned", "", "u9"),  # not a segment
        (4 * MINUTE, "entered", "gone", "u5"),  # a segment no longer defined
    ]
    for before, kind, segment, user in planted:
        transition(redis, keys, now - before, kind, segment, user, now - before)
    redis.hset(keys.members("adding"), mapping={"u3": now - HOUR, "u7": now - 3 * HOUR})
    redis.hset(keys.members("gone"), "u5", now - 4 * MINUTE)

    full = read_sizes(redis, keys, definitions, now_ms=now)
    assert counts(full)["adding"] == (2, 1, 1, 3, 2)
    assert counts(full)["browsing"] == (0, 0, 0, 0, 0) and "gone" not in counts(full)
    assert full.transitions_read == 7 and full.partial_windows == () and full.events_applied == 0

    # the newest 3 (back to now-10m): both windows begin before that, so both are partial (lower bounds)
    cut = read_sizes(redis, keys, definitions, now_ms=now, max_transitions=3)
    assert counts(cut)["adding"] == (2, 0, 1, 0, 1)
    assert cut.read_back_to_ms == now - 10 * MINUTE and cut.partial_windows == ("1h", "24h")
    # the newest 5 (back to now-1h exactly): the hour is whole, the day is not
    cut = read_sizes(redis, keys, definitions, now_ms=now, max_transitions=5)
    assert counts(cut)["adding"] == (2, 1, 1, 2, 1)
    assert cut.read_back_to_ms == now - HOUR and cut.partial_windows == ("24h",)

    # a transition whose event time is ahead of now (a client clock ahead) counts as in the windows
    transition(redis, keys, now + 1000, "entered", "adding", "u8", now + 5 * MINUTE)
    assert counts(read_sizes(redis, keys, definitions, now_ms=now + 1000))["adding"][1] == 2


def test_the_dashboard_says_when_the_bound_cut_the_read_short(redis_url: str):
    redis, keys = Redis.from_url(redis_url), Keys("wording")
    now = now_ms()
    for before in (3 * HOUR, 20 * MINUTE, 10 * MINUTE):
        transition(redis, keys, now - before, "entered", "adding", "u1", now - before)
    sizes = read_sizes(redis, keys, parse_definitions(DEFINITIONS), now_ms=now, max_transitions=2)
    clock = datetime.fromtimestamp((now - 20 * MINUTE) / 1000, UTC).strftime("%H:%M:%S")
    assert wording.live_partial_sentence(sizes) == (
        f"Only the newest 2 transitions (entries, exits and abandoned carts) were read: they go back to {clock} UTC, "
        "so over the last hour and the last 24 hours there may be more entries and exits than shown."
    )
    whole = read_sizes(redis, keys, parse_definitions(DEFINITIONS), now_ms=now)
    assert wording.live_partial_sentence(whole) is None
    assert "The live consumer has applied no event here yet" in wording.live_segments_caption(whole, 3)


def test_a_redis_user_that_may_only_read_can_read_the_sizes(redis_url: str):
    admin, keys = Redis.from_url(redis_url), Keys("readonly")
    transition(admin, keys, now_ms(), "entered", "adding", "u1", now_ms())
    admin.hset(keys.members("adding"), "u1", now_ms())
    admin.acl_setuser("reader", enabled=True, passwords=["+reader-secret"], categories=["+@read"], keys=["*"])
    reader = Redis.from_url(redis_url.replace("redis://", "redis://reader:reader-secret@"))
    sizes = read_sizes(reader, keys, parse_definitions(DEFINITIONS))
    assert counts(sizes)["adding"] == (1, 1, 0, 1, 0)
    with pytest.raises(NoPermissionError):  # the user really may not write
        reader.hset(keys.members("adding"), "u2", 1)


def test_a_redis_that_does_not_answer_raises_a_connection_error():
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        read_sizes(redis, Keys(), parse_definitions(DEFINITIONS))
    assert time.monotonic() - started < 2
