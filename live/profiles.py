"""A user's live profile, read from the state the consumer keeps (live/state.py).

The user's state is its own and that of every anonymous id an event named together with it, merged when read (the
warehouse stitches the same way: anonymous events before the identify count for the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from live.keys import Keys
from live.segments import parse_member
from live.state import DAY_MS
from live.traits import ALL_SEGMENTS, EXPERIMENT_FIELD, TRAIT_FIELDS

WINDOWS_MS = {"10m": 600_000, "1h": 3_600_000, "1d": DAY_MS}


def iso_time(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC text ('...Z')."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_time(ms)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


# One round trip for a whole profile: the subjects (the user behind an anonymous id, its linked anonymous ids) and
# every key the profile reads. Key names come in ARGV as prefixes (Keys with an empty subject), so their scheme
# stays in live/keys.py. It only reads. A standalone Redis: the keys are computed in the script, which Redis Cluster
# would refuse.
# ARGV: link, ids, profile, events, cart, removed, traits prefixes, the recommendations prefix ('' to skip them),
# traits_version key, user/anonymous id, then the member hash key of every live segment.
# Returns: {subjects}, then per subject its profile, events (member, score, ...), cart and removals (flat field,
# value lists), then {the user's entry time in each segment or ''}, its traits, the traits version and its
# recommendations ('' when none).
PROFILE_SCRIPT = """
local id = ARGV[10]
local user = redis.call('GET', ARGV[1] .. id) or id
local subjects = {user}
for _, anonymous in ipairs(redis.call('SMEMBERS', ARGV[2] .. user)) do
    if anonymous ~= user then subjects[#subjects + 1] = anonymous end
end
local out = {subjects}
for _, subject in ipairs(subjects) do
    out[#out + 1] = redis.call('HGETALL', ARGV[3] .. subject)
    out[#out + 1] = redis.call('ZRANGE', ARGV[4] .. subject, 0, -1, 'WITHSCORES')
    out[#out + 1] = redis.call('HGETALL', ARGV[5] .. subject)
    out[#out + 1] = redis.call('HGETALL', ARGV[6] .. subject)
end
local entries = {}
for i = 11, #ARGV do entries[#entries + 1] = redis.call('HGET', ARGV[i], user) or '' end
out[#out + 1] = entries
out[#out + 1] = redis.call('HGETALL', ARGV[7] .. user)
out[#out + 1] = redis.call('GET', ARGV[9]) or ''
out[#out + 1] = ARGV[8] ~= '' and redis.call('GET', ARGV[8] .. user) or ''
return out
"""


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


@dataclass(frozen=True)
class _Reply:
    """PROFILE_SCRIPT's answer, unpacked: per subject (the user first) its profile, events, cart and removals; the
    user's segment entries, its batch traits when they are the current copy's (else empty) and its recommendations."""

    subjects: list[str]
    profiles: list[dict[bytes, bytes]]
    events: list[list[bytes]]
    carts: list[dict[bytes, bytes]]
    removals: list[dict[bytes, bytes]]
    entries: list[bytes]
    batch: dict[bytes, bytes]
    traits_version: bytes
    recommendations: bytes

    @classmethod
    def unpack(cls, raw: list) -> _Reply:
        subjects = [subject.decode() for subject in raw[0]]
        state = raw[1 : 1 + 4 * len(subjects)]
        entries, traits, version, own = raw[1 + 4 * len(subjects) :]
        traits = _pairs(traits)
        batch = traits if traits and version and traits.get(b"version") == version else {}
        return cls(
            subjects, [_pairs(flat) for flat in state[0::4]], state[1::4], [_pairs(flat) for flat in state[2::4]],
            [_pairs(flat) for flat in state[3::4]], entries, batch, version, own,
        )  # fmt: skip

    def last_order_ms(self) -> int | None:
        order = _latest(self.profiles, b"order_ms", b"order_id", ())
        return order[0] if order else None


@dataclass(frozen=True)
class _ProfileQuery:
    """What one profile read asks Redis, and how its answer becomes a profile."""

    keys: Keys
    session_gap_ms: int
    segment_names: tuple[str, ...]
    with_recommendations: bool = False

    def arguments(self, user_id: str) -> list[str]:
        keys = self.keys
        prefixes = [
            keys.user_of(""),
            keys.anonymous_ids(""),
            keys.profile(""),
            keys.events(""),
            keys.cart(""),
            keys.removed(""),
            keys.traits(""),
            keys.recommendations("") if self.with_recommendations else "",
        ]
        return [*prefixes, keys.traits_version, user_id, *(keys.members(name) for name in self.segment_names)]

    def profile(self, raw: list, now_ms: int | None) -> dict[str, Any] | None:
        now_ms = int(datetime.now(UTC).timestamp() * 1000) if now_ms is None else now_ms
        reply = _Reply.unpack(raw)
        if not any(reply.profiles):
            return None
        times = [list(zip(flat[0::2], (float(score) for score in flat[1::2]), strict=True)) for flat in reply.events]
        return _assemble(
            reply.subjects[0], sorted(reply.subjects[1:]), now_ms, self.session_gap_ms, reply.profiles, times,
            reply.carts, reply.removals, dict(zip(self.segment_names, reply.entries, strict=True)), reply.batch,
        )  # fmt: skip


@dataclass(frozen=True)
class ProfileReader:
    """Reads live profiles of one key prefix (a synchronous Redis client)."""

    redis: Redis
    keys: Keys
    session_gap_ms: int
    segment_names: tuple[str, ...] = ()  # the live segments a profile lists the user's memberships of

    def read(self, user_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The live profile of `user_id` (a user id or an anonymous id) at `now_ms` (default: now); None when the
        live state knows nothing of it. One round trip."""
        query = _ProfileQuery(self.keys, self.session_gap_ms, self.segment_names)
        return query.profile(self.redis.eval(PROFILE_SCRIPT, 0, *query.arguments(user_id)), now_ms)

    def recommendations(self, user_id: str, n: int) -> dict[str, Any] | None:
        """Up to `n` recommended products for `user_id`: its own from the batch (ml.recommendations), else its
        cluster's most popular products, else everyone's; products in its live cart are left out. None when
        neither the live state nor the batch knows the user. One round trip."""
        query = _ProfileQuery(self.keys, self.session_gap_ms, (), with_recommendations=True)
        pipeline = self.redis.pipeline(transaction=False)
        pipeline.eval(PROFILE_SCRIPT, 0, *query.arguments(user_id))
        pipeline.hgetall(self.keys.popular)
        raw, popular = pipeline.execute()
        return _recommendations(raw, popular, n)


class AsyncProfileReader:
    """ProfileReader's reads on an asyncio Redis client (what the profile API serves from)."""

    def __init__(self, redis: AsyncRedis, keys: Keys, session_gap_ms: int, segment_names: tuple[str, ...]) -> None:
        self.redis = redis
        self.keys = keys
        self.query = _ProfileQuery(keys, session_gap_ms, segment_names)
        self.recommendation_query = _ProfileQuery(keys, session_gap_ms, (), with_recommendations=True)
        self.script = redis.register_script(PROFILE_SCRIPT)  # EVALSHA, loaded on first use

    async def read(self, user_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """As ProfileReader.read."""
        return self.query.profile(await self.script(args=self.query.arguments(user_id)), now_ms)

    async def recommendations(self, user_id: str, n: int) -> dict[str, Any] | None:
        """As ProfileReader.recommendations."""
        arguments = self.recommendation_query.arguments(user_id)
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.eval(PROFILE_SCRIPT, 0, *arguments)
            pipeline.hgetall(self.keys.popular)
            raw, popular = await pipeline.execute()
        return _recommendations(raw, popular, n)


def _recommendations(raw: list, popular: dict[bytes, bytes], n: int) -> dict[str, Any] | None:
    reply = _Reply.unpack(raw)
    batch, version = reply.batch, reply.traits_version
    if not batch and not any(reply.profiles):
        return None
    in_cart = {item["product_id"] for item in _cart(reply.carts, reply.removals, reply.last_order_ms())["items"]}
    if batch and reply.recommendations:
        source, model_version, items = orjson.loads(reply.recommendations)
        picks = [(product, float(score)) for product, score in items]
    else:
        current = bool(version) and popular.get(b"version") == version
        segment = batch.get(b"cluster_name", b"")
        if not current or segment not in popular:
            segment = ALL_SEGMENTS.encode()
        products = orjson.loads(popular[segment]) if current and segment in popular else []
        source = "popularity" if segment == ALL_SEGMENTS.encode() else "segment_popularity"
        model_version = popular.get(b"model_version", b"").decode() or None
        picks = [(product, None) for product in products]
    kept = [(product, score) for product, score in picks if product not in in_cart][:n]
    return {
        "user_id": reply.subjects[0],
        "source": source,
        "model_version": model_version,
        "recommendations": [
            {"rank": rank, "product_id": product, "score": score} for rank, (product, score) in enumerate(kept, 1)
        ],
    }


def _assemble(
    user: str,
    anonymous: list[str],
    now_ms: int,
    session_gap_ms: int,
    profiles: list[dict],
    times: list[list[tuple[bytes, float]]],
    carts: list[dict],
    removals: list[dict],
    entries: dict[str, bytes],
    batch: dict[bytes, bytes],
) -> dict[str, Any]:
    """The profile from its subjects' state (the user's first)."""
    last_seen = _latest(profiles, b"last_seen_ms", b"last_seen_id", (b"last_event",))
    viewed = _latest(profiles, b"viewed_ms", b"viewed_id", (b"viewed_product",))
    order = _latest(profiles, b"order_ms", b"order_id", ())
    event_times = sorted({int(score) for events in times for _, score in events})
    # the same message under two subjects counts once
    messages = {parse_member(member, score).message_id: int(score) for events in times for member, score in events}
    return {
        "user_id": user,
        "anonymous_ids": anonymous,
        "as_of": _iso(now_ms),
        "last_seen_at": _iso(last_seen[0]) if last_seen else None,
        "last_event": _text(last_seen[1][0]) if last_seen else None,
        "events": {
            name: sum(1 for at in messages.values() if now_ms - span < at <= now_ms)
            for name, span in WINDOWS_MS.items()
        },
        "sessions": _sessions(event_times, now_ms, session_gap_ms),
        "last_product_viewed": ({"product_id": _text(viewed[1][0]), "at": _iso(viewed[0])} if viewed else None),
        "last_order_at": _iso(order[0]) if order else None,
        "cart": _cart(carts, removals, order[0] if order else None),
        "segments": {name: _iso(int(entered)) for name, entered in entries.items() if entered},
        "traits": {name: batch[name.encode()].decode() for name in TRAIT_FIELDS if name.encode() in batch},
        "experiments": {
            field[len(EXPERIMENT_FIELD) :].decode(): value.decode()
            for field, value in sorted(batch.items())
            if field.startswith(EXPERIMENT_FIELD)
        },
    }


def _latest(profiles: list[dict], ms_field: bytes, id_field: bytes, values: tuple[bytes, ...]) -> tuple | None:
    """(ms, [values]) of the subject whose (ms, id) under the fields is the latest, or None."""
    best = None
    for profile in profiles:
        if ms_field in profile:
            key = (int(profile[ms_field]), profile[id_field])
            if best is None or key > best[0]:
                best = (key, [profile.get(name) for name in values])
    return (best[0][0], best[1]) if best else None


def _sessions(event_times: list[int], now_ms: int, gap_ms: int) -> dict[str, int]:
    """Sessions (runs of events with less than `gap_ms` between them) with an event in each window up to now."""
    last_events: list[int] = []  # each session's last event time
    previous = None
    for at in event_times:
        if at > now_ms:
            break
        if previous is None or at - previous >= gap_ms:
            last_events.append(at)
        else:
            last_events[-1] = at
        previous = at
    return {name: sum(1 for last in last_events if last > now_ms - span) for name, span in WINDOWS_MS.items()}


def _cart(carts: list[dict], removals: list[dict], order_ms: int | None) -> dict[str, Any]:
    """Products added after the last order and after their own last removal, their latest add each."""
    latest: dict[str, tuple[int, str, int, float | None]] = {}
    for cart in carts:
        for product, value in cart.items():
            added_ms, message_id, quantity, price = value.decode().split("|", 3)
            entry = (int(added_ms), message_id, int(quantity), float(price) if price else None)
            name = product.decode()
            if name not in latest or entry[:2] > latest[name][:2]:
                latest[name] = entry
    removed: dict[str, int] = {}
    for removal in removals:
        for product, value in removal.items():
            removed[product.decode()] = max(removed.get(product.decode(), 0), int(value))
    items = []
    for product, (added_ms, _, quantity, price) in sorted(latest.items()):
        if (order_ms is not None and added_ms <= order_ms) or added_ms <= removed.get(product, -1):
            continue
        items.append({"product_id": product, "quantity": quantity, "price": price, "added_at": _iso(added_ms)})
    value = sum(item["quantity"] * item["price"] for item in items if item["price"] is not None)
    return {"items": items, "value": round(value, 2), "items_without_price": sum(i["price"] is None for i in items)}
