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
class UserState:
    """What evaluating one user needs: its events, traits, and current memberships (entry and until, by segment)."""

    events: list[StoredEvent]
    traits: dict[str, str]
    entered: dict[str, bytes | None]
    until: dict[str, float | None]


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

    # -- reading users' events, traits and memberships: a few pipelined round trips for a whole batch of users

    def _users_of(self, subjects: list[str]) -> list[str]:
        pipeline = self.redis.pipeline(transaction=False)
        for subject in subjects:
            pipeline.get(self.keys.user_of(subject))
        return [
            linked.decode() if linked else subject for subject, linked in zip(subjects, pipeline.execute(), strict=True)
        ]

    def load(self, users: list[str]) -> dict[str, UserState]:
        """Each user's stored events (its own and its linked anonymous ids', one per message id), batch traits of
        the current serving copy, and its current memberships and their `until`."""
        segments = list(self.segments)
        pipeline = self.redis.pipeline(transaction=False)
        pipeline.get(self.keys.traits_version)
        for user in users:
            pipeline.smembers(self.keys.anonymous_ids(user))
            pipeline.hgetall(self.keys.traits(user))
        for name in segments:
            pipeline.hmget(self.keys.members(name), users)
            pipeline.zmscore(self.keys.until, [f"{name}{SEPARATOR}{user}" for user in users])
        replies = pipeline.execute()
        version, replies = replies[0], replies[1:]
        anonymous, traits = replies[0 : 2 * len(users) : 2], replies[1 : 2 * len(users) : 2]
        membership = replies[2 * len(users) :]
        subjects = {user: [user, *sorted(a.decode() for a in linked if a.decode() != user)]
                    for user, linked in zip(users, anonymous, strict=True)}  # fmt: skip
        pipeline = self.redis.pipeline(transaction=False)
        for user in users:
            for subject in subjects[user]:
                pipeline.zrange(self.keys.events(subject), 0, -1, withscores=True)
        event_replies = iter(pipeline.execute())
        states = {}
        for index, user in enumerate(users):
            events: dict[str, StoredEvent] = {}
            for _ in subjects[user]:
                for member, score in next(event_replies):
                    event = parse_member(member, score)
                    events.setdefault(event.message_id, event)
            stored = traits[index]
            current = bool(stored) and version is not None and stored.get(b"version") == version
            states[user] = UserState(
                events=list(events.values()),
                traits={k.decode(): v.decode() for k, v in stored.items() if k != b"version"} if current else {},
                entered={name: membership[2 * i][index] for i, name in enumerate(segments)},
                until={name: membership[2 * i + 1][index] for i, name in enumerate(segments)},
            )
        return states

    # -- evaluation

    def _record(self, pipeline, segment: Segment, user: str, state: UserState, holds: bool, until: int | None,
                at_ms: int) -> None:  # fmt: skip
        entered = state.entered.get(segment.name)
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
            known_until = state.until.get(segment.name)
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

    def evaluate_dirty(self) -> int:
        """Evaluate up to BATCH_USERS users whose ids had events applied, each at its newest event time; returns how
        many ids were taken."""
        subjects = [member.decode() for member in self.redis.srandmember(self.keys.dirty, BATCH_USERS) or []]
        if not subjects:
            return 0
        users_of = self._users_of(subjects)
        merged = sorted({s for s, u in zip(subjects, users_of, strict=True) if s != u})
        users = sorted(set(users_of))
        states = self.load(users + [s for s in merged if s not in users])
        with self.redis.pipeline(transaction=True) as pipeline:
            for subject in merged:  # an anonymous id now counts as its user: it leaves what it was in
                state = states[subject]
                for segment in self.segments.values():
                    if state.entered.get(segment.name) is not None:
                        self._record(pipeline, segment, subject, state, False, None, self._newest(subject))
            for user in users:
                state = states[user]
                moment = max((e.at_ms for e in state.events), default=0)  # no event kept: event conditions false
                for segment in self.segments.values():
                    holds, until = evaluate(segment, state.events, state.traits, moment)
                    self._record(pipeline, segment, user, state, holds, until, moment)
                self.stats.evaluated += 1
            pipeline.srem(self.keys.dirty, *subjects)
            pipeline.execute()
        return len(subjects)

    def _newest(self, subject: str) -> int:
        score = self.redis.zscore(self.keys.active, subject)
        return int(score) if score is not None else 0

    def sweep(self, now_ms: int) -> int:
        """Memberships whose `until` has passed: evaluated at that moment (an exit, unless events extended them)."""
        due = self.redis.zrangebyscore(self.keys.until, "-inf", now_ms, start=0, num=BATCH_USERS, withscores=True)
        if not due:
            return 0
        slots = [(slot.decode().partition(SEPARATOR), int(until)) for slot, until in due]
        states = self.load(sorted({user for (_, _, user), _ in slots}))
        with self.redis.pipeline(transaction=True) as pipeline:
            for (name, _, user), until in slots:
                segment = self.segments.get(name)
                if segment is None:  # a segment no longer defined
                    pipeline.zrem(self.keys.until, f"{name}{SEPARATOR}{user}")
                    continue
                state = states[user]
                holds, new_until = evaluate(segment, state.events, state.traits, until)
                self._record(pipeline, segment, user, state, holds, new_until, until)
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
        subjects = [subject.decode() for subject, _ in due]
        users = self._users_of(subjects)
        with self.redis.pipeline(transaction=True) as pipeline:
            for (subject_bytes, due_score), user in zip(due, users, strict=True):
                subject, due_ms = subject_bytes.decode(), int(due_score)
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
