"""Forgetting users in the live state (privacy.erase calls this in its `files` step)."""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from live.keys import Keys


def erase_ids(redis: Redis, keys: Keys, ids: Iterable[str]) -> int:
    """Delete every live key of the given user and anonymous ids, and of the anonymous ids linked to them; returns
    the keys deleted. The spool offsets stay: the lines are not read again, and the suppression list keeps the ids
    out of anything read later."""
    subjects = set(ids)
    for subject in list(subjects):
        subjects |= {member.decode() for member in redis.smembers(keys.anonymous_ids(subject))}
    doomed = [key for subject in sorted(subjects) for key in keys.subject_keys(subject)]
    doomed += [keys.anonymous_ids(subject) for subject in subjects] + [keys.user_of(s) for s in subjects]
    deleted = 0
    for start in range(0, len(doomed), 1000):
        deleted += redis.delete(*doomed[start : start + 1000])
    return deleted


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
