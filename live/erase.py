"""Forgetting users in the live state (privacy.erase calls this in its `files` step)."""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from live.keys import Keys
from live.segments import SEPARATOR


def erase_ids(redis: Redis, keys: Keys, ids: Iterable[str]) -> int:
    """Delete every live key of the given user and anonymous ids (and of the anonymous ids linked to them), and
    every mention of them in the shared keys (memberships, the transitions stream, delivery keys, the indexes);
    returns the keys and entries removed. The spool offsets stay: the lines are not read again, and the
    suppression list keeps the ids out of anything read later."""
    subjects = set(ids)
    for subject in list(subjects):
        subjects |= {member.decode() for member in redis.smembers(keys.anonymous_ids(subject))}
    doomed = [key for subject in sorted(subjects) for key in keys.subject_keys(subject)]
    doomed += [keys.anonymous_ids(s) for s in subjects] + [keys.user_of(s) for s in subjects]
    doomed += [keys.traits(s) for s in subjects] + [keys.recommendations(s) for s in subjects]
    removed = 0
    for start in range(0, len(doomed), 1000):
        removed += redis.delete(*doomed[start : start + 1000])
    members = sorted(subjects)
    for index in (keys.dirty,):
        removed += redis.srem(index, *members)
    for index in (keys.active, keys.carts_due):
        removed += redis.zrem(index, *members)
    for key in redis.scan_iter(match=f"{keys.prefix}:m:*"):
        removed += redis.hdel(key, *members)
    for key in redis.scan_iter(match=f"{keys.prefix}:mi:*"):
        removed += redis.zrem(key, *members)
    named = {subject.encode() for subject in subjects}
    until = [slot for slot, _ in redis.zscan_iter(keys.until) if slot.split(SEPARATOR.encode(), 1)[-1] in named]
    delivered = [key for key, _ in redis.zscan_iter(keys.delivered) if set(key.split(b"|")) & named]
    removed += (redis.zrem(keys.until, *until) if until else 0) + (
        redis.zrem(keys.delivered, *delivered) if delivered else 0
    )
    stream = [entry_id for entry_id, fields in _stream(redis, keys.transitions) if fields.get(b"user_id") in named]
    for start in range(0, len(stream), 1000):
        removed += redis.xdel(keys.transitions, *stream[start : start + 1000])
    return removed


def _stream(redis: Redis, key: str):
    """Every entry of a stream, oldest first, read in pages."""
    start = "-"
    while True:
        page = redis.xrange(key, min=start, count=1000)
        if not page:
            return
        yield from page
        last = page[-1][0].decode()
        milliseconds, sequence = last.split("-")
        start = f"{milliseconds}-{int(sequence) + 1}"


def erase_live_state(redis_url: str, prefix: str, ids: Iterable[str]) -> dict[str, object]:
    """`erase_ids` on the Redis at `redis_url`, then its append-only log rewritten when it keeps one; {"keys_deleted":
    n, ...}, or {"reachable": False} when no Redis answers there (the live path is optional: without it there is no
    live state)."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    try:
        redis.ping()
    except RedisConnectionError:
        return {"reachable": False}
    try:
        deleted = erase_ids(redis, Keys(prefix), ids)
        rewritten = False
        if deleted and redis.config_get("appendonly").get("appendonly") == "yes":
            redis.bgrewriteaof()  # the log still holds the commands that wrote the deleted keys
            rewritten = True
        return {"keys_deleted": deleted, "append_only_log_rewritten": rewritten}
    finally:
        redis.close()
