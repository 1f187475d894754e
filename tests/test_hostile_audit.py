"""The audit of issue 18 (hostile input), one planted case per fault it found: floods of distinct client labels
(feature names, trait values) folded into '(other)', ids of 1 MB bounded in staging, an event dated 2001 that
must not cut the recent days out of daily_kpis, rows written to raw.events by another path (no event name, no
call type, no id) that must not fail a dbt test, and ML feature frames with negative, infinite, NaN and huge
values that must not raise anything but NotEnoughData. Real ingestion, real dbt, real DuckDB; numbers by hand.

Project rule: a value a client controls can make a row rejected or flagged, never a model, a check or a run fail,
and never a model's size grow without bound.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ingestion import IngestSettings, ingest_landing
from ml.churn import ChurnParams, score_users, train_churn
from ml.clustering import ClusterParams, train_clustering
from ml.features import (
    CHURN_FEATURES,
    RATE_FEATURES,
    NotEnoughData,
    load_churn_snapshots,
    load_cluster_inputs,
    mix_columns,
)
from tests.conftest import event, query, run_dbt, write_lines

T0 = datetime(2026, 1, 5, 10, 0)  # a Monday: week W0 is 2026-01-05 .. 2026-01-11
W0 = date(2026, 1, 5)
AS_OF = T0 + timedelta(days=15)  # the latest event
OLD = datetime(2001, 1, 1, 10, 0)  # after ingestion's MIN_EVENT_TIME (2000-01-01): a valid client timestamp
MAX_VALUES = 3  # dbt var label_max_values in this test (default 50)
DBT_VARS = {"label_max_values": MAX_VALUES}

LONG_USER = "U" * 1_000_000  # a user id of 1 MB (ingestion's line limit is 4 MiB)
LONG_ANON = "A" * 500
LONG_MESSAGE = "M" * 300
FLOOD = [f"flood{i:03d}" for i in range(300)]  # 300 distinct feature names from one user


def long_id(value: str) -> str:
    """What staging keeps of an id longer than var id_max_length (200): a fixed label and the md5 of the id."""
    return "(long id) " + hashlib.md5(value.encode()).hexdigest()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Log:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, user: str | None, name: str | None, moment: datetime, **fields: object) -> None:
        message_id = fields.pop("message_id", f"a{len(self.rows):05d}")
        self.rows.append(event(message_id, user, event=name, timestamp=iso(moment), received_at=iso(moment), **fields))

    def feature(self, user: str, feature: object, moment: datetime) -> None:
        self.add(user, "Feature Used", moment, properties={"feature": feature})

    def identify(self, user: str, traits: dict, moment: datetime) -> None:
        self.add(user, None, moment, type="identify", traits=traits)


# W0 feature users: search 4, export 3, share 2 (kept with var label_max_values = 3); zz_a, zz_b (f4), zz_c (f5),
# a client's own '(other)' (f6) and 300 flood names (f7) fold into '(other)'; an object is '(invalid)' (kept)
FEATURE_USES = {
    "f0": ["search", "export", "share"],
    "f1": ["search", "export", "share"],
    "f2": ["search", "export"],
    "f3": ["search"],
    "f4": ["zz_a", "zz_b"],
    "f5": ["zz_c"],
    "f6": ["(other)"],
    "f7": FLOOD,
    "fi": [{"name": "nested"}],
}
# country of the latest identify: DE 3, FR 2, US 1 kept; zx0..zx5 and a client's own '(other)' fold (7 users)
COUNTRIES = {"d0": "DE", "d1": "DE", "d2": "DE", "d3": "FR", "d4": "FR", "d5": "US", "do": "(other)"}
COUNTRIES |= {f"dx{i}": f"zx{i}" for i in range(6)}


def build_log() -> list[dict]:
    log = Log()
    for user, features in FEATURE_USES.items():
        for i, feature in enumerate(features):
            log.feature(user, feature, T0 + timedelta(seconds=i))
    for user, country in COUNTRIES.items():
        log.add(user, "Product Viewed", T0 + timedelta(days=1))
        log.identify(user, {"country": country, **({"plan": "pro"} if user == "d0" else {})}, T0 + timedelta(days=1))
    # ids beyond var id_max_length (200): a 1 MB user id (2 events), a 500-character anonymous id, a 300-character
    # message id
    log.add(LONG_USER, "Product Viewed", T0 + timedelta(days=2))
    log.add(LONG_USER, "Order Completed", T0 + timedelta(days=2, hours=1), properties={"revenue": 10})
    log.add(None, None, T0 + timedelta(days=2), type="page", anonymous_id=LONG_ANON)
    log.add("lm", "Product Viewed", T0 + timedelta(days=2), message_id=LONG_MESSAGE)
    log.add("old", "Product Viewed", OLD)  # one event of 2001
    log.add("late", "Product Viewed", AS_OF)
    return log.rows


W0_ACTIVE_USERS = len(FEATURE_USES) + len(COUNTRIES) + 3  # + the long user, the long anonymous id, lm


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    write_lines(data_dir / "landing" / "events.jsonl", build_log())
    result = ingest_landing(IngestSettings(data_dir=data_dir))
    assert query(data_dir, "select count(*) from raw.events_rejected") == [(0,)], result
    run_dbt(data_dir, "build", dbt_vars=DBT_VARS)  # raises unless every model and test passed
    return data_dir


def flags(data_dir: Path) -> dict[str, tuple[int, int, str | None]]:
    rows = query(data_dir, "select flag, flagged, users, example from marts.data_health_flags")
    return {flag: (flagged, users, example) for flag, flagged, users, example in rows}


@pytest.mark.slow
def test_a_flood_of_feature_names_folds_into_other(warehouse):
    rows = query(
        warehouse,
        "select feature, feature_users, feature_events, active_users, adoption_rate from marts.feature_adoption "
        "where week_start = ? order by feature",
        [W0],
    )
    n = W0_ACTIVE_USERS
    assert rows == [
        ("(invalid)", 1, 1, n, pytest.approx(1 / n)),
        ("(other)", 4, 2 + 1 + 1 + 300, n, pytest.approx(4 / n)),  # f4, f5, f6, f7: distinct users, not a sum
        ("export", 3, 3, n, pytest.approx(3 / n)),
        ("search", 4, 4, n, pytest.approx(4 / n)),
        ("share", 2, 2, n, pytest.approx(2 / n)),
    ]
    assert query(warehouse, "select count(*) from marts.feature_adoption") == [(5,)]
    # zz_a, zz_b, zz_c, the client's '(other)' and the 300 flood names; the smallest name as the example
    assert flags(warehouse)["features_folded"] == (304, 4, "(other)")


@pytest.mark.slow
def test_a_flood_of_trait_values_folds_into_other_in_cohort_retention_by_dimension(warehouse):
    values = query(
        warehouse,
        "select dimension_value, cohort_size from marts.cohort_retention_by_dimension "
        "where dimension = 'country' and grain = 'week' and cohort_start = ? and period_number = 0 "
        "order by dimension_value",
        [W0],
    )
    unknown = W0_ACTIVE_USERS - len(COUNTRIES)  # W0 users without an identify
    assert values == [("(other)", 7), ("DE", 3), ("FR", 2), ("US", 1), ("unknown", unknown)]
    every_value = query(
        warehouse,
        "select distinct dimension_value from marts.cohort_retention_by_dimension where dimension = 'country' "
        "order by 1",
    )
    assert every_value == [("(other)",), ("DE",), ("FR",), ("US",), ("unknown",)]
    plans = query(
        warehouse,
        "select distinct dimension_value from marts.cohort_retention_by_dimension where dimension = 'plan' order by 1",
    )
    assert plans == [("pro",), ("unknown",)]
    # int_users keeps each user's own (bounded) value; only the split folds
    assert query(warehouse, "select country from intermediate.int_users where user_id = 'dx3'") == [("zx3",)]
    assert flags(warehouse)["dimension_values_folded"] == (7, 7, "country: (other)")


@pytest.mark.slow
def test_ids_of_a_megabyte_are_bounded_in_staging_and_flagged(warehouse):
    for table in ["staging.stg_events", "intermediate.int_users", "intermediate.int_sessions",
                  "marts.user_segments", "marts.ml_user_features", "intermediate.int_feature_events"]:  # fmt: skip
        longest = query(warehouse, f"select max(length(user_id)) from {table}")[0][0]
        assert longest <= 200, table
    assert query(warehouse, "select max(length(message_id)) from staging.stg_events")[0][0] <= 200
    assert query(warehouse, "select max(length(anonymous_id)) from staging.stg_events")[0][0] <= 200
    # the long user is still one user, with its own two events and its revenue
    daily = query(
        warehouse,
        "select events, orders, revenue from intermediate.int_user_daily_activity where user_id = ?",
        [long_id(LONG_USER)],
    )
    assert daily == [(2, 1, 10)]
    anonymous = query(warehouse, "select user_id from staging.stg_events where event_type = 'page'")
    assert anonymous == [(long_id(LONG_ANON),)]
    assert query(warehouse, "select user_id from staging.stg_events where message_id = ?", [long_id(LONG_MESSAGE)]) == [
        ("lm",)
    ]
    examples = [long_id(LONG_MESSAGE), *(row["message_id"] for row in build_log() if row.get("user_id") == LONG_USER)]
    assert flags(warehouse)["long_id"] == (4, 3, min(examples))
    assert max(len(example or "") for _, _, example in flags(warehouse).values()) <= 200


@pytest.mark.slow
def test_an_event_of_2001_does_not_cut_the_recent_days_out_of_daily_kpis(warehouse):
    first, last, days = query(
        warehouse, "select min(activity_date), max(activity_date), count(*) from marts.daily_kpis"
    )[0]
    assert (first, last) == (OLD.date(), AS_OF.date())
    assert days == (AS_OF.date() - OLD.date()).days + 1
    dau = dict(query(warehouse, "select activity_date, dau from marts.daily_kpis where dau > 0"))
    assert dau == {
        OLD.date(): 1,
        W0: len(FEATURE_USES),
        W0 + timedelta(days=1): len(COUNTRIES),
        W0 + timedelta(days=2): 3,
        AS_OF.date(): 1,
    }
    # the 7-day window of the as_of day holds only 'late'; the 30-day one everybody active since 2025-12-22
    assert query(warehouse, "select wau, mau from marts.daily_kpis where activity_date = ?", [AS_OF.date()]) == [
        (1, W0_ACTIVE_USERS + 1)
    ]


@pytest.mark.slow
def test_an_event_of_2001_keeps_its_ltv_cohort_up_to_as_of(warehouse):
    weeks = (date(2026, 1, 19) - OLD.date()).days // 7  # 2001-01-01 and 2026-01-19 are Mondays: 1,307 weeks
    assert query(
        warehouse, "select max(period_number), count(*) from marts.cohort_ltv where cohort_start = ?", [OLD.date()]
    ) == [(weeks, weeks + 1)]


# rows written to raw.events by another path than today's ingestion (an older loader, a backfill)
LEGACY_ROWS = [
    # message_id, user_id, anonymous_id, type, event
    ("lg-1", "lg", None, "track", None),  # a track call without a name
    ("lg-2", "lg", None, "track", "***"),  # a name with nothing left after normalising
    ("lg-4", None, None, "track", "Product Viewed"),  # nobody: neither user_id nor anonymous_id
    ("lg-5", "", None, "track", "Product Viewed"),  # an empty user id (ingestion trims it to null)
]


@pytest.fixture(scope="module")
def legacy_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("audit_legacy") / "data"
    write_lines(data_dir / "landing" / "events.jsonl", [event("c1", "u1", timestamp=iso(T0), received_at=iso(T0))])
    ingest_landing(IngestSettings(data_dir=data_dir))
    moment = T0 + timedelta(hours=1)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        for message_id, user_id, anonymous_id, call_type, name in LEGACY_ROWS:
            con.execute(
                "insert into raw.events values (?, ?, ?, ?, ?, ?, ?, null, null, null, 'legacy.jsonl', 1, ?)",
                [message_id, user_id, anonymous_id, call_type, name, moment, moment, moment],
            )
    run_dbt(data_dir, "build")  # raises unless every model and test passed
    return data_dir


@pytest.mark.slow
def test_legacy_rows_without_a_name_or_an_id_never_fail_a_test(legacy_warehouse):
    names = query(
        legacy_warehouse, "select message_id, event_name, is_activity from staging.stg_events order by message_id"
    )
    assert names == [
        ("c1", "product_viewed", True),
        ("lg-1", "(invalid)", True),
        ("lg-2", "(invalid)", True),
    ]
    got = flags(legacy_warehouse)
    assert got["unnamed_event"] == (2, 1, "lg-1")
    # lg-4 and lg-5: left out of staging, there is no user to give the event to
    assert got["event_without_user"] == (2, 0, "lg-4")


# ML: the feature frames as dbt writes them, with values no clean log produces but that can reach the marts


def snapshot_frame(rows_per_cutoff: int = 80, seed: int = 3) -> pd.DataFrame:
    """8 cutoffs 14 days apart; churn follows recency (with noise), so every model family can learn it."""
    rng = np.random.default_rng(seed)
    frames = []
    for number in range(8):
        cutoff = pd.Timestamp("2026-01-01") - pd.Timedelta(days=14 * number)
        frame = pd.DataFrame({c: rng.gamma(2.0, 2.0, rows_per_cutoff) for c in CHURN_FEATURES})
        for share in ("coupon_order_share", "feature_use_share", "page_view_share", "product_view_share",
                      "cart_add_share", "search_share"):  # fmt: skip
            frame[share] = rng.uniform(0, 1, rows_per_cutoff)
        frame["recency_days"] = rng.uniform(0, 30, rows_per_cutoff)
        frame["active_days_total"] = rng.integers(1, 30, rows_per_cutoff).astype(float)
        frame["is_churned"] = (frame["recency_days"] + rng.normal(0, 5, rows_per_cutoff)) > 15
        frame.insert(0, "user_id", [f"u{i:03d}" for i in range(rows_per_cutoff)])
        frame.insert(1, "cutoff_at", cutoff)
        frame["as_of"] = pd.Timestamp("2026-01-31")
        frame["snapshot_number"] = number
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


HOSTILE_VALUES = {  # feature -> values planted on the first rows of every cutoff
    "revenue_total": [-1e6, 1e300, -np.inf],  # refunds booked as orders by a legacy loader; beyond float32
    "avg_order_value": [-5.0, np.nan, 1e308],
    "events_total": [1e300, np.inf, 0.0],
    "sessions_per_active_day": [np.inf, -1.0, 1e200],
    "events_per_session": [1e300, -3.0, np.nan],
    "trend_28_90": [np.nan, -np.inf, 1e250],
}


def plant(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    first_rows = frame.groupby("cutoff_at").head(3).index
    for feature, values in HOSTILE_VALUES.items():
        frame.loc[first_rows, feature] = np.tile(values, len(first_rows) // 3)
    return frame


def write_table(path: Path, table: str, frame: pd.DataFrame) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.register("frame", frame)
        con.execute(f"create or replace table marts.{table} as select * from frame")


def test_churn_trains_and_scores_on_hostile_feature_values(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    write_table(database, "ml_churn_snapshots", plant(snapshot_frame()))
    with duckdb.connect(str(database), read_only=True) as con:
        snapshots = load_churn_snapshots(con)
    values = snapshots[list(CHURN_FEATURES)].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1e12).all()
    result = train_churn(snapshots, ChurnParams())
    assert set(result.cv_scores["family"]) == {"logistic_regression", "random_forest", "gradient_boosting"}
    features = snapshots[snapshots["cutoff_at"] == snapshots["cutoff_at"].max()].assign(
        is_churn_scoring_population=True
    )
    scores = score_users(result.model, features)
    assert len(scores) == 80 and np.isfinite(scores["churn_probability"]).all()


# Category names are client values (bounded in length by the mart, but any text): markup, the column naming's
# own separator, an empty string; and shares another writer left out of range or null
HOSTILE_CATEGORIES = ["page_viewed", "<img src=x onerror=alert(1)>", "mix:action:x", ""]


def mix_frame(user_ids: pd.Series, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for user in user_ids:
        shares = rng.dirichlet(np.ones(len(HOSTILE_CATEGORIES)))
        for category, share in zip(HOSTILE_CATEGORIES, shares, strict=True):
            rows.append((user, "action", category, float(share), 0.25, int(rng.integers(0, 30)), 2.0))
    frame = pd.DataFrame(rows, columns=["user_id", "dimension", "category", "shrunk_share", "population_share",
                                        "dimension_events", "prior_events"])  # fmt: skip
    if len(frame) >= 4:
        frame.loc[:3, "shrunk_share"] = [np.nan, -5.0, 7.0, 1e300]
    return frame


def test_clustering_on_hostile_feature_values(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    frame = plant(snapshot_frame(rows_per_cutoff=200))
    features = frame[frame["cutoff_at"] == frame["cutoff_at"].max()].assign(active_days_total=20.0)
    write_table(database, "ml_user_features", features)
    write_table(database, "ml_user_mix", mix_frame(features["user_id"]))
    with duckdb.connect(str(database), read_only=True) as con:
        loaded, population = load_cluster_inputs(con)
    mix = mix_columns(loaded)
    assert len(mix) == len(HOSTILE_CATEGORIES)
    values = loaded[[*RATE_FEATURES, *mix]].to_numpy()
    assert np.isfinite(values).all() and (loaded[mix].to_numpy() <= 1).all() and (loaded[mix].to_numpy() >= 0).all()
    result = train_clustering(loaded, population, ClusterParams(k_min=2, k_max=4, min_users=40))
    assert len(result.assignments) == 200 and np.isfinite(result.assignments["confidence"]).all()


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_user_frames_raise_only_not_enough_data(tmp_path, rows):
    database = tmp_path / "warehouse.duckdb"
    snapshots = plant(snapshot_frame(rows_per_cutoff=3)).groupby("cutoff_at").head(rows)
    write_table(database, "ml_churn_snapshots", snapshots)
    features = snapshots.drop(columns=["is_churned", "as_of", "snapshot_number"])
    write_table(database, "ml_user_features", features)
    write_table(database, "ml_user_mix", mix_frame(features["user_id"]).head(rows * len(HOSTILE_CATEGORIES)))
    with duckdb.connect(str(database), read_only=True) as con:
        loaded_snapshots, (loaded_features, population) = load_churn_snapshots(con), load_cluster_inputs(con)
    with pytest.raises(NotEnoughData):
        train_churn(loaded_snapshots)
    with pytest.raises(NotEnoughData):
        train_clustering(loaded_features, population)
