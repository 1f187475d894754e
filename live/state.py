"""Folding one live event into its subject's state in Redis: one Lua script, atomic, run inside the consumer's
transaction.

Every change is a maximum by (event time, message id) or a set insertion, so the state does not depend on the order
the events come in (the spool files of several collector processes interleave differently in a live run and in a
replay) and applying an event twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from live.keys import Keys
from live.records import LiveEvent
from live.segments import member_text

DAY_MS = 86_400_000
# Segment's e-commerce event names, as the warehouse spells them
PRODUCT_VIEWED = "product_viewed"
PRODUCT_ADDED = "product_added"
PRODUCT_REMOVED = "product_removed"
ORDER_COMPLETED = "order_completed"
MAX_EVENTS_PER_SUBJECT = 20_000  # the events kept per subject (a flood for one id keeps its newest)
MAX_CART_ITEMS = 500  # distinct products in one subject's cart; more are not added

# KEYS: profile, events, cart, removed, anonymous ids of the user, user of the anonymous id, applied counter,
#       dirty subjects, active subjects, carts due
# ARGV: message id, time ms, name, product id, price, quantity, retention ms, max events, max cart items, ttl s,
#       user id, anonymous id, events-zset member, cart wait ms ('' without a cart_abandoned trigger), subject
APPLY_EVENT = """
local id, at, name, product = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl = tonumber(ARGV[10])
local function later(field_ms, field_id)
    local known = redis.call('HMGET', KEYS[1], field_ms, field_id)
    if not known[1] then return true end
    local known_ms = tonumber(known[1])
    return at > known_ms or (at == known_ms and id > known[2])
end
redis.call('ZADD', KEYS[2], 'NX', at, ARGV[13])
local newest = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (newest - tonumber(ARGV[7])))
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
if later('last_seen_ms', 'last_seen_id') then
    redis.call('HSET', KEYS[1], 'last_seen_ms', at, 'last_seen_id', id, 'last_event', name)
end
if name == 'product_viewed' and product ~= '' and later('viewed_ms', 'viewed_id') then
    redis.call('HSET', KEYS[1], 'viewed_ms', at, 'viewed_id', id, 'viewed_product', product)
end
if name == 'product_added' and product ~= '' then
    local current = redis.call('HGET', KEYS[3], product)
    local replace = not current
    if current then
        local sep = string.find(current, '|', 1, true)
        local rest = string.sub(current, sep + 1)
        local known_ms = tonumber(string.sub(current, 1, sep - 1))
        local known_id = string.sub(rest, 1, string.find(rest, '|', 1, true) - 1)
        replace = at > known_ms or (at == known_ms and id > known_id)
    elseif redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[9]) then
        replace = false
    end
    if replace then
        redis.call('HSET', KEYS[3], product, at .. '|' .. id .. '|' .. ARGV[6] .. '|' .. ARGV[5])
    end
    if ARGV[14] ~= '' then redis.call('ZADD', KEYS[10], 'GT', at + tonumber(ARGV[14]), ARGV[15]) end
end
if name == 'product_removed' and product ~= '' then
    local known = redis.call('HGET', KEYS[4], product)
    if (not known) or tonumber(known) < at then redis.call('HSET', KEYS[4], product, at) end
end
if name == 'order_completed' and later('order_ms', 'order_id') then
    redis.call('HSET', KEYS[1], 'order_ms', at, 'order_id', id)
end
for i = 1, 4 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ttl) end
end
if ARGV[11] ~= '' and ARGV[12] ~= '' then
    redis.call('SADD', KEYS[5], ARGV[12])
    redis.call('EXPIRE', KEYS[5], ttl)
    redis.call('SET', KEYS[6], ARGV[11], 'EX', ttl)
end
redis.call('INCR', KEYS[7])
redis.call('SADD', KEYS[8], ARGV[15])
redis.call('ZADD', KEYS[9], 'GT', newest, ARGV[15])
return 1
"""


@dataclass(frozen=True)
class StateRules:
    """How much state is kept: the sliding windows' longest span plus a session gap, and for how long."""

    session_gap_ms: int
    ttl_seconds: int

    @property
    def retention_ms(self) -> int:
        # a day of events, and one session gap more so that the first session of the day is known to start there
        return DAY_MS + self.session_gap_ms


class StateWriter:
    """Applies live events to Redis (`apply` queues them on a transaction pipeline)."""

    def __init__(self, redis: Redis, keys: Keys, rules: StateRules, cart_wait_ms: int | None = None) -> None:
        self.keys = keys
        self.rules = rules
        self.cart_wait_ms = cart_wait_ms  # the cart_abandoned trigger's wait (None: no such trigger)
        self._script: Script = redis.register_script(APPLY_EVENT)

    def apply(self, pipeline: Pipeline, event: LiveEvent) -> None:
        """Queue `event` on `pipeline` (run at its EXEC, with whatever else the transaction holds)."""
        keys, subject = self.keys, event.subject
        self._script(
            keys=[
                keys.profile(subject),
                keys.events(subject),
                keys.cart(subject),
                keys.removed(subject),
                keys.anonymous_ids(event.user_id or ""),
                keys.user_of(event.anonymous_id or ""),
                keys.applied,
                keys.dirty,
                keys.active,
                keys.carts_due,
            ],
            args=[
                event.message_id,
                event.at_ms,
                event.name,
                event.product_id or "",
                "" if event.price is None else repr(event.price),
                event.quantity,
                self.rules.retention_ms,
                MAX_EVENTS_PER_SUBJECT,
                MAX_CART_ITEMS,
                self.rules.ttl_seconds,
                event.user_id or "",
                event.anonymous_id or "",
                member_text(event.message_id, event.name, event.properties),
                "" if self.cart_wait_ms is None else self.cart_wait_ms,
                subject,
            ],
            client=pipeline,
        )
