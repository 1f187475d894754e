"""The feature tables dbt builds (marts.ml_user_features, marts.ml_churn_snapshots), read into pandas."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

FEATURES_TABLE = "marts.ml_user_features"
SNAPSHOTS_TABLE = "marts.ml_churn_snapshots"

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

# What a user does rather than how long it has been around: the clustering reads the mix of its actions.
CLUSTER_FEATURES: tuple[str, ...] = (
    "coupon_order_share",
    "feature_use_share",
    "product_view_share",
    "cart_add_share",
    "page_view_share",
    "events_per_session",
)
# Heavy-tailed counts and rates are clustered on a log scale; shares stay as they are.
LOG_FEATURES = frozenset({"events_per_session", "active_days_per_week", "avg_order_value", "sessions_per_active_day"})


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


def load_churn_snapshots(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """marts.ml_churn_snapshots: one row per user and past cutoff, with is_churned."""
    return _numeric(_read(con, SNAPSHOTS_TABLE))


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
