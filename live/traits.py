"""Batch traits for the live path: each user's RFM segment, lifecycle stage, cluster name and churn risk tier from
the serving copy, copied into Redis when a new copy has been published (its meta.publish.published_at changes)."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
from redis import Redis

from live.keys import Keys

log = logging.getLogger("live.traits")

# One row per user: the trait columns the live segments and profiles name (live.definitions.TRAITS).
TRAITS_SQL = """
with users as (
    select user_id from marts.user_segments
    union select user_id from ml.user_clusters
    union select user_id from ml.churn_scores
)
select users.user_id, segments.rfm_segment, segments.lifecycle_stage, clusters.cluster_name,
    churn.risk_tier as churn_risk_tier
from users
left join marts.user_segments as segments using (user_id)
left join ml.user_clusters as clusters using (user_id)
left join ml.churn_scores as churn using (user_id)
"""
CHUNK = 10_000


def published_version(serving_path: Path) -> str | None:
    """published_at of the serving copy at `serving_path`, as text (None when there is no copy)."""
    if not serving_path.exists():
        return None
    with duckdb.connect(str(serving_path), read_only=True) as con:
        row = con.execute("select cast(max(published_at) as varchar) from meta.publish").fetchone()
    return row[0] if row else None


def refresh_traits(redis: Redis, keys: Keys, serving_path: Path, ttl_seconds: int) -> int | None:
    """Copy the traits of a newly published serving copy into Redis; returns the users written, or None when the
    copy is the one already loaded (or there is none). Hashes of the older copy expire by their TTL and are ignored
    meanwhile (their version field differs)."""
    version = published_version(serving_path)
    if version is None:
        return None
    loaded = redis.get(keys.traits_version)
    if loaded is not None and loaded.decode() == version:
        return None
    with duckdb.connect(str(serving_path), read_only=True) as con:
        try:
            rows = con.execute(TRAITS_SQL).fetchall()
        except duckdb.CatalogException as error:  # a copy from before these tables existed
            log.warning("serving copy %s has no traits to load: %s", version, error)
            return None
    names = ("rfm_segment", "lifecycle_stage", "cluster_name", "churn_risk_tier")
    for start in range(0, len(rows), CHUNK):
        pipeline = redis.pipeline(transaction=False)
        for user_id, *values in rows[start : start + CHUNK]:
            mapping = {name: value for name, value in zip(names, values, strict=True) if value is not None}
            mapping["version"] = version
            pipeline.delete(keys.traits(user_id))
            pipeline.hset(keys.traits(user_id), mapping=mapping)
            pipeline.expire(keys.traits(user_id), ttl_seconds)
        pipeline.execute()
    redis.set(keys.traits_version, version)
    log.info("batch traits of %d users loaded from the serving copy published at %s", len(rows), version)
    return len(rows)
