"""A user's live profile, read from the state the consumer keeps (live/state.py).

The user's state is its own and that of every anonymous id an event named together with it, merged when read (the
warehouse stitches the same way: anonymous events before the identify count for the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from live.keys import Keys
from live.segments import parse_member
from live.state import DAY_MS

WINDOWS_MS = {"10m": 600_000, "1h": 3_600_000, "1d": DAY_MS}


def iso_time(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC text ('...Z')."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_time(ms)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


@dataclass(frozen=True)
class ProfileReader:
    """Reads live profiles of one key prefix."""

    redis: Redis
    keys: Keys
    session_gap_ms: int
    segment_names: tuple[str, ...] = ()  # the live segments a profile lists the user's memberships of

    def subjects(self, user_id: str) -> list[str]:
        """The ids whose state is the user's: itself (resolved from an anonymous id to its user) and its linked
        anonymous ids."""
        linked_user = self.redis.get(self.keys.user_of(user_id))
        user = linked_user.decode() if linked_user else user_id
        anonymous = sorted(member.decode() for member in self.redis.smembers(self.keys.anonymous_ids(user)))
        return [user, *(a for a in anonymous if a != user)]

    def read(self, user_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The live profile of `user_id` (a user id or an anonymous id) at `now_ms` (default: now); None when the
        live state knows nothing of it."""
        now_ms = int(datetime.now(UTC).timestamp() * 1000) if now_ms is None else now_ms
        subjects = self.subjects(user_id)
        pipeline = self.redis.pipeline(transaction=False)
        for subject in subjects:
            pipeline.hgetall(self.keys.profile(subject))
            pipeline.zrange(self.keys.events(subject), 0, -1, withscores=True)
            pipeline.hgetall(self.keys.cart(subject))
            pipeline.hgetall(self.keys.removed(subject))
        for name in self.segment_names:
            pipeline.hget(self.keys.members(name), subjects[0])
        pipeline.hgetall(self.keys.traits(subjects[0]))
        pipeline.get(self.keys.traits_version)
        replies = pipeline.execute()
        state, (*entries, traits, traits_version) = replies[: 4 * len(subjects)], replies[4 * len(subjects) :]
        profiles, times, carts, removals = state[0::4], state[1::4], state[2::4], state[3::4]
        if not any(profiles):
            return None
        last_seen = _latest(profiles, b"last_seen_ms", b"last_seen_id", (b"last_event",))
        viewed = _latest(profiles, b"viewed_ms", b"viewed_id", (b"viewed_product",))
        order = _latest(profiles, b"order_ms", b"order_id", ())
        event_times = sorted({int(score) for events in times for _, score in events})
        # the same message under two subjects counts once
        messages = {parse_member(member, score).message_id: int(score) for events in times for member, score in events}
        return {
            "user_id": subjects[0],
            "anonymous_ids": subjects[1:],
            "as_of": _iso(now_ms),
            "last_seen_at": _iso(last_seen[0]) if last_seen else None,
            "last_event": _text(last_seen[1][0]) if last_seen else None,
            "events": {
                name: sum(1 for at in messages.values() if now_ms - span < at <= now_ms)
                for name, span in WINDOWS_MS.items()
            },
            "sessions": _sessions(event_times, now_ms, self.session_gap_ms),
            "last_product_viewed": ({"product_id": _text(viewed[1][0]), "at": _iso(viewed[0])} if viewed else None),
            "last_order_at": _iso(order[0]) if order else None,
            "cart": _cart(carts, removals, order[0] if order else None),
            "segments": {
                name: _iso(int(entered)) for name, entered in zip(self.segment_names, entries, strict=True) if entered
            },
            "traits": (
                {k.decode(): v.decode() for k, v in traits.items() if k != b"version"}
                if traits and traits_version is not None and traits.get(b"version") == traits_version
                else {}
            ),
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
