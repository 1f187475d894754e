"""The feature tables dbt builds (marts.ml_user_features, marts.ml_user_mix, marts.ml_churn_snapshots), read into
pandas."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

FEATURES_TABLE = "marts.ml_user_features"
MIX_TABLE = "marts.ml_user_mix"
SNAPSHOTS_TABLE = "marts.ml_churn_snapshots"
INTERACTIONS_TABLE = "marts.ml_product_interactions"
CLUSTERS_TABLE = "ml.user_clusters"

# Every numeric behavioural feature of the dbt macro ml_user_features; the churn model reads them all.
CHURN_FEATURES: tuple[str, ...] = (
    "tenure_days",
    "recency_days",
    "active_span_days",
    "events_total",
    "active_days_total",
    "sessions_total",
    "active_days_7",
    "sessions_7",
    "events_7",
    "active_days_28",
    "sessions_28",
    "events_28",
    "active_days_90",
    "sessions_90",
    "events_90",
    "active_days_per_week",
    "sessions_per_active_day",
    "events_per_session",
    "avg_session_minutes",
    "orders_total",
    "orders_90",
    "orders_per_session",
    "revenue_total",
    "avg_order_value",
    "coupon_order_share",
    "feature_use_share",
    "page_view_share",
    "product_view_share",
    "cart_add_share",
    "search_share",
    "trend_7_28",
    "trend_28_90",
)

# Drift is watched on the features that describe current behaviour; cumulative counts and ages grow with the
# product's own age (the earliest snapshots cannot have long tenures), so they would always look drifted.
DRIFT_FEATURES: tuple[str, ...] = tuple(
    c
    for c in CHURN_FEATURES
    if c
    not in {
        "tenure_days",
        "active_span_days",
        "events_total",
        "active_days_total",
        "sessions_total",
        "orders_total",
        "revenue_total",
    }
)

# What a user does rather than how long it has been around: its rates per session and per active day (on a log
# scale, as they are heavy-tailed) beside the mix of its behaviour (marts.ml_user_mix, one column per dimension and
# category, named by mix_column). None of them grows with the user's age or its number of events.
RATE_FEATURES: tuple[str, ...] = (
    "events_per_session",
    "sessions_per_active_day",
    "avg_session_minutes",
    "orders_per_session",
    "avg_order_value",
)
MIX_PREFIX = "mix:"
WEIGHT_PREFIX = "mix_weight:"
MIX_EVENTS = "mix_events"  # the user's actions in the mix: what its cluster rests on
MIX_EVENTS_DIMENSION = "action"


def mix_column(dimension: str, category: str) -> str:
    """The feature column of one category's shrunk share."""
    return f"{MIX_PREFIX}{dimension}:{category}"


def weight_column(dimension: str) -> str:
    """The column holding how much a user's own events count in its shares of a dimension (0 to 1)."""
    return f"{WEIGHT_PREFIX}{dimension}"


def dimension_of(column: str) -> str:
    """The dimension of a mix column."""
    return column[len(MIX_PREFIX) :].split(":", 1)[0]


def mix_columns(frame: pd.DataFrame) -> list[str]:
    """The mix columns of a features frame, in a stable order."""
    return sorted(c for c in frame.columns if str(c).startswith(MIX_PREFIX))


class NotEnoughData(Exception):
    """The data cannot train or test a model; the message says why (shown in the asset's metadata)."""


@dataclass(frozen=True)
class DataVersion:
    """What a model was trained on: row counts, as_of and a hash of the training rows."""

    rows: int
    users: int
    as_of: str
    sha256: str

    def as_params(self, prefix: str = "data") -> dict[str, object]:
        return {
            f"{prefix}_rows": self.rows,
            f"{prefix}_users": self.users,
            f"{prefix}_as_of": self.as_of,
            f"{prefix}_sha256": self.sha256,
        }


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's values in a stable row and column order (what 'the same training set' means)."""
    ordered = frame.reindex(sorted(frame.columns), axis=1)
    ordered = ordered.sort_values(list(ordered.columns)).reset_index(drop=True)
    row_hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes() + ",".join(ordered.columns).encode()).hexdigest()


def data_version(frame: pd.DataFrame, as_of: object) -> DataVersion:
    """The data version of a training frame."""
    users = int(frame["user_id"].nunique()) if "user_id" in frame else len(frame)
    return DataVersion(rows=len(frame), users=users, as_of=str(as_of), sha256=frame_hash(frame))


def _read(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    try:
        return con.execute(f"select * from {table} order by all").df()  # table names are module constants
    except duckdb.CatalogException as error:
        raise NotEnoughData(f"{table} does not exist yet (run dbt first): {error}") from error


def load_user_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """marts.ml_user_features: one row per user at as_of (cutoff_at is as_of)."""
    return _numeric(_read(con, FEATURES_TABLE))


def load_cluster_inputs(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.Series]:
    """What the clustering reads: marts.ml_user_features with each user's mix beside it (the shrunk share of every
    category as a mix column, the weight of the user's own events per dimension, its number of actions), and the
    population's share of every mix column (the centre the shares are shrunk towards)."""
    features = load_user_features(con)
    try:
        mix = con.execute(
            f"select user_id, dimension, category, shrunk_share, population_share, dimension_events, prior_events "
            f"from {MIX_TABLE}"
        ).df()
    except duckdb.CatalogException as error:
        raise NotEnoughData(f"{MIX_TABLE} does not exist yet (run dbt first): {error}") from error
    return with_mix(features, mix)


def with_mix(features: pd.DataFrame, mix: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """`features` with the long mix (rows of marts.ml_user_mix) pivoted beside it, and the population shares."""
    # mix_column, vectorised: one Python call per row took 12 of the 20 s of loading 74,464 users' mix (5M rows)
    mix = mix.assign(column=MIX_PREFIX + mix["dimension"].astype(str) + ":" + mix["category"].astype(str))
    shares = mix.pivot_table(index="user_id", columns="column", values="shrunk_share", aggfunc="first")
    mix["weight"] = mix["dimension_events"] / (mix["dimension_events"] + mix["prior_events"])
    weights = mix.drop_duplicates(["user_id", "dimension"]).pivot_table(
        index="user_id", columns="dimension", values="weight", aggfunc="first"
    )
    weights.columns = [weight_column(d) for d in weights.columns]
    actions = mix[mix["dimension"] == MIX_EVENTS_DIMENSION].drop_duplicates("user_id")
    events = actions.set_index("user_id")["dimension_events"].rename(MIX_EVENTS)
    population = mix.drop_duplicates("column").set_index("column")["population_share"].astype(float).sort_index()
    population = population.fillna(0.0).clip(0.0, 1.0)
    frame = features.join(shares, on="user_id").join(weights, on="user_id").join(events, on="user_id")
    for column in shares.columns:  # a user the mix does not know (none in a consistent build) sits at the centre
        frame[column] = frame[column].astype(float).clip(0.0, 1.0).fillna(population[column])
    frame[list(weights.columns)] = frame[list(weights.columns)].astype(float).clip(0.0, 1.0).fillna(0.0)
    frame[MIX_EVENTS] = frame[MIX_EVENTS].fillna(0.0).clip(lower=0.0)
    frame[MIX_EVENTS] = frame[MIX_EVENTS].astype("int64")
    return frame, population


def load_churn_snapshots(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """marts.ml_churn_snapshots: one row per user and past cutoff, with is_churned."""
    return _numeric(_read(con, SNAPSHOTS_TABLE))


def load_product_interactions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """marts.ml_product_interactions as the recommendation model reads it: user_id, product_id, weight and event_at
    (the day, as a UTC timestamp), one row per user, product and day."""
    try:
        return con.execute(
            f"select user_id, product_id, cast(interaction_weight as double) as weight, "
            f"cast(activity_date as timestamp) as event_at from {INTERACTIONS_TABLE} "
            f"where interaction_weight > 0 order by user_id, product_id, activity_date"
        ).df()
    except duckdb.CatalogException as error:
        raise NotEnoughData(f"{INTERACTIONS_TABLE} does not exist yet (run dbt first): {error}") from error


def load_user_segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """user_id and segment (the cluster name of ml.user_clusters): whose popularity a user without history gets.
    Empty when no clustering has been scored yet."""
    try:
        return con.execute(
            f"select user_id, cluster_name as segment from {CLUSTERS_TABLE} where cluster_name is not null "
            f"order by user_id"
        ).df()
    except duckdb.CatalogException:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "segment": pd.Series(dtype=str)})


# Every feature is a count, a duration, a share, a ratio of counts or order revenue: none is negative by
# definition, and none nears this bound on real data. Values outside [0, FEATURE_MAX] come only from rows the input
# contract forbids (refunds booked as orders by another loader than ingestion, ...); they are clipped, because the
# logarithm of a negative number is NaN and float32 (the trees) overflows near 3.4e38, either of which makes a
# model raise on the whole frame.
FEATURE_MAX = 1e12


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """The features as finite floats in [0, FEATURE_MAX]: NaN and infinities are 0, the rest clipped."""
    present = [c for c in CHURN_FEATURES if c in frame]
    values = frame[present].astype(float).replace([np.inf, -np.inf], np.nan).fillna(0.0)
    frame[present] = values.clip(lower=0.0, upper=FEATURE_MAX)
    return frame
