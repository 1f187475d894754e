"""The live consumer: the collector's spool in, per-user state in Redis out, exactly once.

Each transaction applies up to LIVE_BATCH_EVENTS events and moves the offsets of the files they came from (MULTI /
EXEC: both or neither), so a consumer killed at any point resumes at the first line whose change Redis does not
hold. `replay` deletes the live state and offsets and reads every file from the start; the state it rebuilds is
the same (every change is order-independent, live/state.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from live.keys import Keys
from live.records import LiveEvent, Skipped, parse_line
from live.spool_tail import SpoolTail
from live.state import StateRules, StateWriter
from privacy.suppression import Suppressor
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
        self.writer = StateWriter(
            self.redis,
            self.keys,
            StateRules(
                session_gap_ms=int(live.session_gap_minutes * 60_000), ttl_seconds=int(live.state_ttl_days * 86_400)
            ),
        )
        self.suppressor = Suppressor(settings.privacy)
        self.stats = ConsumerStats()
        self.tail = SpoolTail(
            spool_root=settings.collector.spool_root,
            landing_dir=settings.collector.landing_dir,
            offsets=self._stored_offsets(),
            max_read_bytes=live.max_read_bytes,
        )

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
        """Apply every whole line the spool files have gained; returns the events applied."""
        batch_limit = self.settings.live.batch_events
        events: list[LiveEvent] = []
        moved: dict[str, int] = {}
        applied = 0
        for chunk in self.tail.read():
            for offset, line in chunk.lines():
                try:
                    event = parse_line(line)
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
                    applied += self._commit(events, moved)
                    events, moved = [], {}
            moved[chunk.name] = chunk.end
        if events or moved:
            applied += self._commit(events, moved)
        return applied

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

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until `should_stop()`, sleeping LIVE_POLL_SECONDS when nothing was new; logs progress."""
        reported_at = time.monotonic()
        while not should_stop():
            if self.poll() == 0:
                time.sleep(self.settings.live.poll_seconds)
            if time.monotonic() - reported_at >= PROGRESS_EVERY_SECONDS:
                reported_at = time.monotonic()
                stats = self.stats
                log.info(
                    "live: %d events applied, %d skipped, %d suppressed, %d files followed",
                    stats.applied, stats.skipped, stats.suppressed, len(self.tail.offsets),
                )  # fmt: skip
