"""The live consumer: the collector's spool in, per-user state in Redis out, exactly once.

Each transaction applies up to LIVE_BATCH_EVENTS events and moves the offsets of the files they came from (MULTI /
EXEC: both or neither), so a consumer killed at any point resumes at the first line whose change Redis does not
hold. `replay` deletes the live state and offsets and reads every file from the start; the state it rebuilds is
the same (every change is order-independent, live/state.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from activation.webhook import WebhookClient
from live.definitions import load_definitions
from live.delivery import Deliverer
from live.keys import Keys
from live.membership import MembershipKeeper
from live.profiles import ProfileReader
from live.records import LiveEvent, Skipped, parse_line
from live.spool_tail import SpoolTail
from live.state import StateRules, StateWriter
from live.traits import refresh_traits
from privacy.suppression import Suppressor
from serving.publish import SERVING_FILE
from settings import Settings

log = logging.getLogger("live.consumer")
PROGRESS_EVERY_SECONDS = 10.0


@dataclass
class ConsumerStats:
    """What the consumer has done since it started."""

    applied: int = 0
    skipped: int = 0
    suppressed: int = 0
    transactions: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)


class Consumer:
    """Tails the spool of `settings` into the Redis of settings.live."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        live = settings.live
        self.settings = settings
        self.redis = redis if redis is not None else Redis.from_url(live.redis_url)
        self.keys = Keys(live.key_prefix)
        self.definitions = load_definitions(live.definitions_file)
        self.rules = StateRules(
            session_gap_ms=int(live.session_gap_minutes * 60_000), ttl_seconds=int(live.state_ttl_days * 86_400)
        )
        self.writer = StateWriter(self.redis, self.keys, self.rules, self.definitions.cart_abandoned_after_ms)
        self.reader = ProfileReader(
            self.redis, self.keys, self.rules.session_gap_ms, tuple(s.name for s in self.definitions.segments)
        )
        self.membership = MembershipKeeper(self.redis, self.keys, self.definitions, self.reader)
        self.deliverer = self._deliverer()
        self._traits_checked_at = float("-inf")
        self.suppressor = Suppressor(settings.privacy)
        self.stats = ConsumerStats()
        self.tail = SpoolTail(
            spool_root=settings.collector.spool_root,
            landing_dir=settings.collector.landing_dir,
            offsets=self._stored_offsets(),
            max_read_bytes=live.max_read_bytes,
        )

    def _deliverer(self) -> Deliverer | None:
        activation = self.settings.activation
        if not activation.webhook_url or not self.definitions.triggers:
            return None
        client = WebhookClient(
            activation.webhook_url, activation.secret or "", activation.timeout_seconds, activation.max_attempts,
            activation.backoff_seconds,
        )  # fmt: skip
        max_age_ms = int(self.settings.live.trigger_max_age_seconds * 1000)
        return Deliverer(self.redis, self.keys, self.definitions, client, max_age_ms)

    def _stored_offsets(self) -> dict[str, int]:
        return {name.decode(): int(value) for name, value in self.redis.hgetall(self.keys.offsets).items()}

    def replay(self) -> int:
        """Delete every live key of the prefix (state and offsets); the next `poll` reads every file again.
        Returns the keys deleted."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=self.keys.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += self.redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += self.redis.unlink(*batch)
        self.tail.offsets.clear()
        log.info("live state deleted for a replay (%d keys)", deleted)
        return deleted

    def poll(self) -> int:
        """Apply the whole lines the spool files have gained (up to LIVE_MAX_READ_BYTES of each file); returns the
        lines read, used or skipped (0: nothing new)."""
        batch_limit = self.settings.live.batch_events
        events: list[LiveEvent] = []
        moved: dict[str, int] = {}
        read = 0
        for chunk in self.tail.read():
            for offset, line in chunk.lines():
                read += 1
                try:
                    event = parse_line(line, self.definitions.properties)
                except Skipped as reason:
                    self._skip(chunk.name, offset, str(reason))
                    continue
                if self.suppressor.suppressed(event.user_id, event.anonymous_id):
                    self.stats.suppressed += 1
                    continue
                events.append(event)
                if len(events) >= batch_limit:
                    # the offsets move only to a line boundary this transaction has fully applied
                    moved[chunk.name] = offset + len(line) + 1
                    self._commit(events, moved)
                    events, moved = [], {}
            moved[chunk.name] = chunk.end
            read += chunk.end > chunk.start and not chunk.data  # a too-long line skipped whole
        if events or moved:
            self._commit(events, moved)
        return read

    def _commit(self, events: list[LiveEvent], moved: dict[str, int]) -> int:
        with self.redis.pipeline(transaction=True) as pipeline:
            for event in events:
                self.writer.apply(pipeline, event)
            if moved:
                pipeline.hset(self.keys.offsets, mapping=moved)
            pipeline.execute()
        self.tail.offsets.update(moved)
        self.stats.applied += len(events)
        self.stats.transactions += 1
        return len(events)

    def _skip(self, name: str, offset: int, reason: str) -> None:
        self.stats.skipped += 1
        self.stats.skip_reasons[reason] = self.stats.skip_reasons.get(reason, 0) + 1
        log.warning("skipped %s byte %d: %s", name, offset, reason)

    def maintain(self, now_ms: int | None = None, deliver: bool = True) -> None:
        """Evaluate the segments of users with new events, end memberships and carts whose time has come (at
        `now_ms`, default now), load the batch traits of a newly published serving copy, and (with `deliver`)
        deliver triggers."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if time.monotonic() - self._traits_checked_at >= self.settings.live.traits_check_seconds:
            self._traits_checked_at = time.monotonic()
            loaded = refresh_traits(
                self.redis, self.keys, self.settings.data_dir / SERVING_FILE, self.rules.ttl_seconds
            )
            if loaded and any(c.trait for s in self.definitions.segments for c in s.conditions):
                self.membership.mark_active_dirty(now_ms - 86_400_000)
        while self.membership.evaluate_dirty():
            pass
        while self.membership.sweep(now_ms):
            pass
        while self.membership.carts(now_ms):
            pass
        if deliver and self.deliverer is not None:
            while self.deliverer.deliver(now_ms=now_ms):
                pass

    def _deliver_until(self, should_stop: Callable[[], bool]) -> None:
        """The delivery thread of `run`: a slow or failing webhook never holds up the live state."""
        assert self.deliverer is not None
        while not should_stop():
            try:
                if not self.deliverer.deliver(block_ms=1000):
                    time.sleep(self.settings.live.poll_seconds)
            except Exception:  # a Redis or network error: logged, retried (the entries stay pending)
                log.exception("trigger delivery failed; retrying")
                time.sleep(1.0)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll and maintain until `should_stop()`, sleeping LIVE_POLL_SECONDS when nothing was new, with triggers
        delivered on a thread of their own; logs progress."""
        if self.deliverer is not None:
            threading.Thread(target=self._deliver_until, args=(should_stop,), daemon=True, name="deliver").start()
        reported_at = time.monotonic()
        while not should_stop():
            read = self.poll()
            self.maintain(deliver=False)
            if read == 0:
                time.sleep(self.settings.live.poll_seconds)
            if time.monotonic() - reported_at >= PROGRESS_EVERY_SECONDS:
                reported_at = time.monotonic()
                stats = self.stats
                log.info(
                    "live: %d events applied, %d skipped, %d suppressed, %d files followed",
                    stats.applied, stats.skipped, stats.suppressed, len(self.tail.offsets),
                )  # fmt: skip
