"""Live triggers delivered to the activation webhook, once per entry, within seconds.

The `transitions` stream is the outbox: an entry is added in the same transaction as the membership change (or the
abandoned cart) it reports. A consumer group reads it; each entry a trigger names is POSTed with the activation
webhook's signature and its delivery key as Idempotency-Key, then recorded as delivered and acknowledged in one
transaction. A deliverer killed between the POST and that record posts the entry again when it restarts (it reads
its unacknowledged entries first), with the same Idempotency-Key, so the receiver sees the entry once; a delivered
key is never posted again. Entries older than LIVE_TRIGGER_MAX_AGE_SECONDS (a replay of old files, a long outage)
are acknowledged without a POST: a trigger is for now.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from redis import Redis
from redis.exceptions import ResponseError

from activation.webhook import WebhookClient
from live.definitions import Definitions
from live.keys import Keys
from live.profiles import iso_time

log = logging.getLogger("live.delivery")
GROUP = "webhook"
DELIVERED_KEPT_MS = 7 * 86_400_000


@dataclass
class DeliveryStats:
    delivered: int = 0
    stale: int = 0
    failed: int = 0
    not_triggers: int = 0


class Deliverer:
    """Posts the trigger entries of the transitions stream to `client`."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        definitions: Definitions,
        client: WebhookClient,
        max_age_ms: int,
        consumer_name: str = "deliverer",
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.client = client
        self.max_age_ms = max_age_ms
        self.consumer_name = consumer_name
        self.stats = DeliveryStats()
        self._by_segment = {t.segment: t for t in definitions.triggers if t.kind == "segment_entered"}
        self._cart = next((t for t in definitions.triggers if t.kind == "cart_abandoned"), None)
        try:
            redis.xgroup_create(keys.transitions, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._pending_first = True

    def _trigger_of(self, fields: dict[bytes, bytes]):
        kind = fields[b"kind"].decode()
        if kind == "cart_abandoned":
            return self._cart
        if kind == "entered":
            return self._by_segment.get(fields[b"segment"].decode())
        return None

    def deliver(self, block_ms: int = 0, now_ms: int | None = None) -> int:
        """Read and deliver what the stream holds for this group (its own unacknowledged entries first); returns
        the entries handled."""
        start = "0" if self._pending_first else ">"
        replies = self.redis.xreadgroup(
            GROUP, self.consumer_name, {self.keys.transitions: start}, count=100, block=block_ms or None
        )
        entries = replies[0][1] if replies else []
        if self._pending_first and not entries:
            self._pending_first = False
        handled = 0
        for entry_id, fields in entries:
            if not self._handle(entry_id, fields, now_ms):
                break  # the webhook is failing: try again on the next call, in order
            handled += 1
        return handled

    def _handle(self, entry_id: bytes, fields: dict[bytes, bytes], now_ms: int | None) -> bool:
        trigger = self._trigger_of(fields)
        at_ms = int(fields[b"at_ms"])
        key = fields[b"key"].decode()
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if trigger is None:
            self.stats.not_triggers += 1
        elif now_ms - at_ms > self.max_age_ms:
            self.stats.stale += 1
        elif self.redis.zscore(self.keys.delivered, key) is None:
            body = {
                "type": "live_trigger",
                "trigger": trigger.name,
                "kind": trigger.kind,
                "segment": trigger.segment,
                "user_id": fields[b"user_id"].decode(),
                "at": iso_time(at_ms),
                "delivery_key": key,
            }
            result = self.client.post(orjson.dumps(body), idempotency_key=key)
            if not result.ok:
                self.stats.failed += 1
                log.warning("trigger %s for %s not delivered: %s", trigger.name, key, result.last.status)
                return False
            with self.redis.pipeline(transaction=True) as pipeline:
                pipeline.zadd(self.keys.delivered, {key: now_ms})
                pipeline.zremrangebyscore(self.keys.delivered, "-inf", now_ms - DELIVERED_KEPT_MS)
                pipeline.xack(self.keys.transitions, GROUP, entry_id)
                pipeline.execute()
            self.stats.delivered += 1
            return True
        self.redis.xack(self.keys.transitions, GROUP, entry_id)
        return True
