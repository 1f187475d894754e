"""Streamlit helpers the pages share: cached loading, the freshness line, missing-table notes, charts with numbers."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import altair as alt
import pandas as pd
import streamlit as st
from redis import Redis
from redis.exceptions import AuthenticationError, InvalidResponse, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import queries
from dashboard.source import ServingCopy
from ingestion.markup import md_escape
from live.definitions import DefinitionError, load_definitions
from live.keys import Keys
from live.segment_sizes import SegmentSizes, read_sizes
from settings import load as load_settings

MAKE_IT = "run `make demo` (demo data) or `make run` (the files in the landing folder)"
# The live segments' sizes come from Redis (LIVE_REDIS_URL), not the serving copy: a page waits at most the connect
# timeout for a Redis that is not there, the read timeout for one that does not answer, and reuses a read (or a
# failure) for at most LIVE_CACHE_SECONDS.
LIVE_CONNECT_TIMEOUT_SECONDS = 0.5
LIVE_READ_TIMEOUT_SECONDS = 1.0
LIVE_CACHE_SECONDS = 3
LIVE_NOT_RUNNING = "The live path is not running"
# Where each table comes from, said to someone who has only the dashboard in front of them.
HOW_TO_MAKE = {
    "marts.kpi_alerts": "The KPI alert model builds it on every run.",
    "marts.cluster_profiles": "The clustering step builds it once users are clustered.",
    "marts.cluster_feature_index": "dbt builds it from marts.cluster_profiles once users are clustered.",
    "marts.experiment_results": "dbt builds it from experiment_viewed events (properties experiment_id and "
    "variant) and seed experiments.csv.",
    "ml.user_clusters": "The clustering asset writes it when there are enough users to cluster.",
    "ml.churn_scores": "The churn model writes it once it has enough history to train; when it skips, the asset "
    "says why in the Dagster UI.",
    "ml.model_metrics": "The churn model records its holdout metrics there when it trains.",
    "ops.load_manifest": "Every publish copies the load bookkeeping there.",
    "ops.rejects_by_file_reason": "Every publish summarises the rejected rows there.",
    "ops.batches": "Every publish copies the batch gate's verdicts there.",
}


def how_to_make(names: list[str]) -> str:
    """Where the named tables come from and the command that makes them."""
    origins = [HOW_TO_MAKE[name] if len(names) == 1 else f"`{name}`: {HOW_TO_MAKE[name]}" for name in names
               if name in HOW_TO_MAKE]  # fmt: skip
    return " ".join([*origins, f"To build {'it' if len(names) == 1 else 'them'}, {MAKE_IT}."])


def serving() -> ServingCopy:
    """The serving copy under $DATA_DIR."""
    return ServingCopy.current()


@st.cache_data(show_spinner=False, max_entries=1000)
def _cached(path: str, identity: tuple[int, int, int], name: str, params: tuple[tuple[str, Hashable], ...]) -> Any:
    # `identity` is only part of the cache key: a republish swaps in a new file, so a new key and a fresh query
    if name == "tables":
        return ServingCopy(Path(path)).tables()
    return getattr(queries, name)(ServingCopy(Path(path)), **dict(params))


def load(query: Callable[..., Any], **params: Any) -> Any:
    """query(serving copy, **params) for a function of dashboard.queries, cached until the serving copy is
    republished."""
    name = query.__name__
    if getattr(queries, name, None) is not query:
        raise ValueError(f"{name} is not a function of dashboard.queries")
    db = serving()
    identity = db.identity()
    if identity is None:
        raise FileNotFoundError(f"no serving copy at {db.path}")
    frozen = tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in params.items()))
    return _cached(str(db.path), identity, name, frozen)


def tables() -> frozenset[str]:
    """Tables of the current serving copy (empty before the first publish)."""
    db = serving()
    identity = db.identity()
    return frozenset() if identity is None else _cached(str(db.path), identity, "tables", ())


def freshness_line() -> None:
    """The data's as_of and the age of the last publish, at the top of every page."""
    db = serving()
    if db.identity() is None:
        st.warning(f"No serving copy at `{db.path}` yet: {MAKE_IT} to build and publish one.", icon=":material/info:")
        return
    info = load(queries.publish_info)
    if info is None:
        st.warning(f"The serving copy at `{db.path}` has no publish record: {MAKE_IT} to republish it.")
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    published_at: datetime = info["published_at"]
    as_of = info.get("as_of")
    as_of_text = "no events yet" if as_of is None else f"{as_of:%Y-%m-%d %H:%M} UTC"
    age = queries.age_in_words(published_at, now)
    text = f"Data as of **{as_of_text}** · last published **{age} ago** ({published_at:%Y-%m-%d %H:%M} UTC)"
    bound_minutes = load_settings().serving.freshness_bound_minutes
    if (now - published_at).total_seconds() > bound_minutes * 60:
        st.warning(f"{text}: older than the {bound_minutes:.0f}-minute freshness bound.", icon=":material/schedule:")
    else:
        st.caption(text)


def need(*names: str, what: str = "this section", allow_empty: bool = False) -> bool:
    """True when every table exists and has rows (or may be empty); otherwise say what is missing and how to make it."""
    present = tables()
    if not present:
        st.info(f"Nothing to show for {what} yet: there is no serving copy. {MAKE_IT.capitalize()}.")
        return False
    missing = [name for name in names if name not in present]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        st.info(f"No data for {what} yet: {_names(missing)} {verb} not in the serving copy. {how_to_make(missing)}")
        return False
    if allow_empty:
        return True
    counts = load(queries.table_rows, tables=names)
    empty = [name for name, rows in counts.items() if not rows]
    if empty:
        verb = "is" if len(empty) == 1 else "are"
        st.info(f"No data for {what} yet: {_names(empty)} {verb} empty. {how_to_make(empty)}")
        return False
    return True


def _names(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def chart(figure: alt.TopLevelMixin, numbers: pd.DataFrame, *, label: str = "Numbers", empty: str = "") -> None:
    """Draw a chart with its numbers in an expander below; with no numbers, say so instead of an empty chart."""
    if numbers.empty:
        st.info(empty or "No rows match the filters.")
        return
    st.altair_chart(figure, width="stretch")
    with st.expander(label):
        st.dataframe(numbers, hide_index=True, width="stretch")


@st.cache_resource(show_spinner=False)
def live_redis(url: str) -> Redis:
    """A Redis client for LIVE_REDIS_URL with short timeouts (it connects on first use, again after a failure)."""
    return Redis.from_url(
        url, socket_connect_timeout=LIVE_CONNECT_TIMEOUT_SECONDS, socket_timeout=LIVE_READ_TIMEOUT_SECONDS
    )


def _redis_place(url: str) -> str:
    """host:port of a redis:// URL, without its password (LIVE_REDIS_URL is a secret setting)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else "LIVE_REDIS_URL"
    except ValueError:
        return "LIVE_REDIS_URL"


@st.cache_data(show_spinner=False, ttl=LIVE_CACHE_SECONDS, max_entries=20)
def _live_sizes(url: str, prefix: str, definitions_file: str | None) -> tuple[SegmentSizes | None, str, str]:
    # a failure is a value, not an exception, so that it is cached too: a Redis that does not answer costs one
    # connect timeout per LIVE_CACHE_SECONDS, not one per rerun
    try:
        definitions = load_definitions(Path(definitions_file) if definitions_file else None)
    except DefinitionError as error:
        return None, "warning", f"The live segments cannot be shown: {md_escape(error, 500)}"
    try:
        redis = live_redis(url)
    except ValueError:  # Redis.from_url refuses it
        return None, "warning", "The live segments cannot be shown: LIVE_REDIS_URL is not a redis:// URL."
    place = _redis_place(url)
    try:
        return read_sizes(redis, Keys(prefix), definitions), "", ""
    except AuthenticationError:
        note = f"The Redis at {place} refused the credentials of LIVE_REDIS_URL (or wants some): no live segments."
        return None, "warning", note
    except (RedisConnectionError, RedisTimeoutError, InvalidResponse):  # nothing, or not a Redis, answered
        note = (
            f"{LIVE_NOT_RUNNING}: no Redis answered at {place} (LIVE_REDIS_URL), so there are no live segment "
            "sizes to show. `make dev` starts it (a Redis, the collector and the live consumer; docs/live.md), and "
            "they show here within seconds."
        )
        return None, "info", note
    except RedisError as error:
        return None, "warning", f"The Redis at {place} answered with an error: {md_escape(error, 500)}"


def live_segment_sizes() -> tuple[SegmentSizes | None, str, str]:
    """(the live segments' sizes, "", "") from the Redis of LIVE_REDIS_URL, read at most LIVE_CACHE_SECONDS ago;
    or (None, "info" or "warning", why not, in words)."""
    live = load_settings().live
    definitions = str(live.definitions_file) if live.definitions_file else None
    return _live_sizes(live.redis_url, live.key_prefix, definitions)
