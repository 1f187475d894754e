"""Batch traits for the live path, copied into Redis when a new serving copy has been published (its
meta.publish.published_at changes): each user's RFM segment, lifecycle stage, cluster name and churn risk tier, its
experiment variants and its recommended products, and each segment's most popular products (what a user the batch
has no recommendations for gets)."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import orjson
from redis import Redis

from live.keys import Keys

log = logging.getLogger("live.traits")

# Per source table of the serving copy: a query of one row per user (user_id and trait fields). A copy from before a
# table existed loads the others.
TRAIT_QUERIES = {
    "marts.user_segments": "select user_id, rfm_segment, lifecycle_stage from marts.user_segments",
    "ml.user_clusters": "select user_id, cluster_name from ml.user_clusters",
    "ml.churn_scores": "select user_id, risk_tier as churn_risk_tier from ml.churn_scores",
    # a JSON object experiment_id -> variant
    "marts.experiment_assignments": (
        "select user_id, cast(json_group_object(experiment_id, variant) as varchar) as experiments "
        "from marts.experiment_assignments group by user_id"
    ),
    # JSON [source, model version, [[product_id, score], ...]] in rank order (the user's recommendations key)
    "ml.recommendations": (
        "select user_id, cast(to_json([to_json(min(source)), to_json(min(model_version)), "
        "to_json(list([to_json(product_id), to_json(round(score, 4))] order by rank))]) as varchar) "
        "as recommendations from ml.recommendations group by user_id"
    ),
}
# A user's experiment variants are fields of its traits hash named EXPERIMENT_FIELD + experiment id: short values,
# which Redis keeps in its compact hash encoding (one long JSON field would make it a full hash table).
EXPERIMENT_FIELD = b"x:"
# The fields the live profile reads as plain traits (the rest have their own place in a profile or endpoint).
TRAIT_FIELDS = ("rfm_segment", "lifecycle_stage", "cluster_name", "churn_risk_tier")
POPULAR_SQL = (
    "select segment, cast(to_json(list(product_id order by rank)) as varchar), min(model_version) "
    "from ml.popular_products group by segment"
)
ALL_SEGMENTS = "(all)"  # ml.popular_products' segment of every user (ml.recommendations.ALL_SEGMENTS)
FETCH_ROWS = 10_000  # rows read from the copy and written to Redis at a time


def published_version(serving_path: Path) -> str | None:
    """published_at of the serving copy at `serving_path`, as text (None when there is no copy)."""
    if not serving_path.exists():
        return None
    with duckdb.connect(str(serving_path), read_only=True) as con:
        row = con.execute("select cast(max(published_at) as varchar) from meta.publish").fetchone()
    return row[0] if row else None


def _present(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()
    return {name for (name,) in rows}


def refresh_traits(redis: Redis, keys: Keys, serving_path: Path, ttl_seconds: int) -> int | None:
    """Copy the traits of a newly published serving copy into Redis, a bounded number of rows at a time; returns
    the users written, or None when the
    copy is the one already loaded (or there is none). Hashes of the older copy expire by their TTL and are ignored
    meanwhile (their version field differs)."""
    version = published_version(serving_path)
    if version is None:
        return None
    loaded = redis.get(keys.traits_version)
    if loaded is not None and loaded.decode() == version:
        return None
    written = 0
    with duckdb.connect(str(serving_path), read_only=True) as con:
        present = _present(con)
        sources = [sql for table, sql in TRAIT_QUERIES.items() if table in present]
        if not sources:
            log.warning("serving copy %s has no traits to load", version)
            return None
        cursor = con.execute(_traits_sql(sources))
        fields = [column[0] for column in cursor.description][1:]
        while rows := cursor.fetchmany(FETCH_ROWS):
            pipeline = redis.pipeline(transaction=False)
            for user_id, *values in rows:
                mapping = {name: value for name, value in zip(fields, values, strict=True) if value is not None}
                experiments = orjson.loads(mapping.pop("experiments", "{}"))
                mapping |= {EXPERIMENT_FIELD.decode() + name: variant for name, variant in experiments.items()}
                recommendations = mapping.pop("recommendations", None)
                pipeline.delete(keys.traits(user_id), keys.recommendations(user_id))
                pipeline.hset(keys.traits(user_id), mapping={**mapping, "version": version})
                pipeline.expire(keys.traits(user_id), ttl_seconds)
                if recommendations is not None:
                    pipeline.set(keys.recommendations(user_id), recommendations, ex=ttl_seconds)
            pipeline.execute()
            written += len(rows)
        popular = con.execute(POPULAR_SQL).fetchall() if "ml.popular_products" in present else []
    pipeline = redis.pipeline(transaction=True)
    pipeline.delete(keys.popular)
    if popular:
        pipeline.hset(keys.popular, mapping={segment: products for segment, products, _ in popular})
        pipeline.hset(keys.popular, mapping={"version": version, "model_version": popular[0][2] or ""})
    pipeline.set(keys.traits_version, version)
    pipeline.execute()
    log.info("batch traits of %d users loaded from the serving copy published at %s", written, version)
    return written


def _traits_sql(sources: list[str]) -> str:
    """One row per user named by any source, with every source's fields beside it."""
    users = " union ".join(f"select user_id from ({sql})" for sql in sources)
    joins = " ".join(f"left join ({sql}) as source_{i} using (user_id)" for i, sql in enumerate(sources))
    return f"select * from ({users}) as users {joins}"
