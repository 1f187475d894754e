"""Live segment membership and abandoned carts, kept in Redis from the state the consumer writes.

A user is evaluated at its newest event time whenever events of its ids were applied (the `dirty` set, written in the
same transaction as the events), and again when a membership reaches the moment it stops holding (`until`): so entry
and exit times are event times, the same in a live run and in a replay. Each entry, exit and abandoned cart is added
to the `transitions` stream in the transaction that changes the membership; triggers are delivered from there
(live/delivery.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis

from live.definitions import Definitions, Segment
from live.keys import Keys
from live.profiles import ProfileReader
from live.segments import SEPARATOR, StoredEvent, evaluate, parse_member

log = logging.getLogger("live.membership")
TRANSITIONS_KEPT = 100_000  # the stream is trimmed to about this many entries
BATCH_USERS = 500


@dataclass
class MembershipStats:
    evaluated: int = 0
    entered: int = 0
    exited: int = 0
    carts_abandoned: int = 0


class MembershipKeeper:
    """Evaluates the live segments and the cart_abandoned trigger of `definitions` over the state in `redis`."""

    def __init__(self, redis: Redis, keys: Keys, definitions: Definitions, reader: ProfileReader) -> None:
        self.redis = redis
        self.keys = keys
        self.definitions = definitions
        self.reader = reader
        self.segments = {segment.name: segment for segment in definitions.segments}
        self.cart_wait_ms = definitions.cart_abandoned_after_ms
        self.stats = MembershipStats()

    # -- reading a user's events and traits

    def _user_of(self, subject: str) -> str:
        linked = self.redis.get(self.keys.user_of(subject))
        return linked.decode() if linked else subject

    def user_events(self, user: str) -> list[StoredEvent]:
        """The user's stored events (its own and its linked anonymous ids'), one per message id."""
        subjects = self.reader.subjects(user)
        pipeline = self.redis.pipeline(transaction=False)
        for subject in subjects:
            pipeline.zrange(self.keys.events(subject), 0, -1, withscores=True)
        events: dict[str, StoredEvent] = {}
        for reply in pipeline.execute():
            for member, score in reply:
                event = parse_member(member, score)
                events.setdefault(event.message_id, event)
        return list(events.values())

    def traits(self, user: str) -> dict[str, str]:
        """The user's batch traits from the current serving copy ({} when none or from an older copy)."""
        version = self.redis.get(self.keys.traits_version)
        stored = self.redis.hgetall(self.keys.traits(user))
        if not stored or version is None or stored.get(b"version") != version:
            return {}
        return {name.decode(): value.decode() for name, value in stored.items() if name != b"version"}

    # -- evaluation

    def _record(self, pipeline, segment: Segment, user: str, holds: bool, until: int | None, at_ms: int) -> None:
        entered = self.redis.hget(self.keys.members(segment.name), user)
        slot = f"{segment.name}{SEPARATOR}{user}"
        if holds:
            if entered is None:
                pipeline.hset(self.keys.members(segment.name), user, at_ms)
                pipeline.zadd(self.keys.member_index(segment.name), {user: 0})
                self._transition(pipeline, "entered", segment.name, user, at_ms)
                self.stats.entered += 1
            if until is None:
                pipeline.zrem(self.keys.until, slot)
            else:
                pipeline.zadd(self.keys.until, {slot: until})
        elif entered is not None:
            known_until = self.redis.zscore(self.keys.until, slot)
            exit_ms = min(at_ms, int(known_until)) if known_until is not None else at_ms
            pipeline.hdel(self.keys.members(segment.name), user)
            pipeline.zrem(self.keys.member_index(segment.name), user)
            pipeline.zrem(self.keys.until, slot)
            self._transition(pipeline, "exited", segment.name, user, exit_ms)
            self.stats.exited += 1

    def _transition(self, pipeline, kind: str, segment: str, user: str, at_ms: int, key: str | None = None) -> None:
        fields = {"kind": kind, "segment": segment, "user_id": user, "at_ms": at_ms}
        fields["key"] = key or f"{segment}|{kind}|{user}|{at_ms}"
        pipeline.xadd(self.keys.transitions, fields, maxlen=TRANSITIONS_KEPT, approximate=True)

    def _evaluate_user(self, pipeline, user: str, at_ms: int | None = None) -> None:
        events = self.user_events(user)
        traits = self.traits(user)
        moment = at_ms if at_ms is not None else max((e.at_ms for e in events), default=None)
        if moment is None:
            moment = 0  # no event kept any more: every event condition is false
        for segment in self.segments.values():
            holds, until = evaluate(segment, events, traits, moment)
            self._record(pipeline, segment, user, holds, until, moment)
        self.stats.evaluated += 1

    def evaluate_dirty(self) -> int:
        """Evaluate up to BATCH_USERS users whose ids had events applied; returns how many ids were taken."""
        subjects = [member.decode() for member in self.redis.srandmember(self.keys.dirty, BATCH_USERS) or []]
        if not subjects:
            return 0
        with self.redis.pipeline(transaction=True) as pipeline:
            users: set[str] = set()
            for subject in subjects:
                user = self._user_of(subject)
                if user != subject:
                    self._leave_all(pipeline, subject)  # an anonymous id now counts as its user
                users.add(user)
            for user in sorted(users):
                self._evaluate_user(pipeline, user)
            pipeline.srem(self.keys.dirty, *subjects)
            pipeline.execute()
        return len(subjects)

    def _leave_all(self, pipeline, subject: str) -> None:
        for segment in self.segments.values():
            if self.redis.hexists(self.keys.members(segment.name), subject):
                self._record(pipeline, segment, subject, False, None, self._newest(subject))

    def _newest(self, subject: str) -> int:
        score = self.redis.zscore(self.keys.active, subject)
        return int(score) if score is not None else 0

    def sweep(self, now_ms: int) -> int:
        """Memberships whose `until` has passed: evaluated at that moment (an exit, unless events extended them)."""
        due = self.redis.zrangebyscore(self.keys.until, "-inf", now_ms, start=0, num=BATCH_USERS, withscores=True)
        if not due:
            return 0
        with self.redis.pipeline(transaction=True) as pipeline:
            for slot, until in due:
                name, _, user = slot.decode().partition(SEPARATOR)
                segment = self.segments.get(name)
                if segment is None:  # a segment no longer defined
                    pipeline.zrem(self.keys.until, slot)
                    continue
                events, traits = self.user_events(user), self.traits(user)
                holds, new_until = evaluate(segment, events, traits, int(until))
                self._record(pipeline, segment, user, holds, new_until, int(until))
            pipeline.execute()
        return len(due)

    def carts(self, now_ms: int) -> int:
        """Carts whose wait has passed: abandoned when items are still in them and no order came after the last
        product added."""
        if self.cart_wait_ms is None:
            return 0
        due = self.redis.zrangebyscore(self.keys.carts_due, "-inf", now_ms, start=0, num=BATCH_USERS, withscores=True)
        if not due:
            return 0
        with self.redis.pipeline(transaction=True) as pipeline:
            for subject_bytes, due_ms in due:
                subject, due_ms = subject_bytes.decode(), int(due_ms)
                user = self._user_of(subject)
                profile = self.reader.read(user, due_ms)
                added_ms = due_ms - self.cart_wait_ms
                if profile and profile["cart"]["items"]:
                    key = f"cart_abandoned|{user}|{added_ms}"
                    self._transition(pipeline, "cart_abandoned", "", user, due_ms, key)
                    self.stats.carts_abandoned += 1
                # removed only if no later add moved it meanwhile (the consumer is the only writer)
                pipeline.zrem(self.keys.carts_due, subject)
            pipeline.execute()
        return len(due)

    def mark_active_dirty(self, since_ms: int) -> int:
        """Put every id with an event since `since_ms` in the dirty set (after batch traits changed)."""
        subjects = self.redis.zrangebyscore(self.keys.active, since_ms, "+inf")
        for start in range(0, len(subjects), 10_000):
            self.redis.sadd(self.keys.dirty, *subjects[start : start + 10_000])
        return len(subjects)

    def sizes(self) -> dict[str, int]:
        """Members of each live segment now."""
        pipeline = self.redis.pipeline(transaction=False)
        for name in self.segments:
            pipeline.hlen(self.keys.members(name))
        return dict(zip(self.segments, pipeline.execute(), strict=True))
