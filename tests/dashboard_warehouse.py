"""A tiny warehouse with hand-picked numbers for the dashboard tests, published to a serving copy.

Numbers worth knowing (the tests compute what pages must show from them):
- daily_kpis, 2026-01-05 (Monday) to 2026-01-18, day i = 0..13: dau 10+i, wau 20+i, mau 30+i, new_users 2,
  orders i % 3, revenue 10*i, conversion orders/dau. One KPI alert: revenue on 2026-01-10.
- weekly cohorts (as_of 2026-01-20 12:00): 2026-01-05 size 10, retained 10/6/3 (unbounded 10/7/3), periods 0-1
  complete; 2026-01-12 size 20, retained 20/8, period 0 complete; 2026-01-19 size 5, nothing complete.
  By plan: free 6/15/5 users with 4 and 5 retained in period 1, pro 4/5/0 with 2 and 3.
- lifecycle (week): 01-05 new 10; 01-12 new 20, returning 6, dormant 4; 01-19 new 5, returning 8, resurrecting 1,
  dormant 18. stickiness (week 01-12, complete): exactly 1..7 days: 10, 8, 4, 2, 1, 1, 0 of 26 users.
- six users u1..u6, churn tiers low (u1 .05, u2 .2), medium (u3 .55), high (u5 .7, u4 .9).
- experiments: checkout_button (control 200/20, green 210/42, lift +100% [+30%, +170%], split fine) and
  onboarding (control 40/8, short 35/8, lift +14% [-50%, +70%], SRM p 0.0001, underpowered; and the unplanned
  variant evil, 3 users, 1 conversion, not compared; onboarding is not in the seed). Metric sums for
  checkout_button only (int_experiment_metric_moments): conversion (primary) as above - lift +100%, 95% interval
  1 +- 1.96 * 0.5074 = +0.6% to +199.4% by the delta method - and refunds (guardrail, lower is better, tolerance
  5%) 10 of 200 against 11 of 210; onboarding has none, so no decision.
- data_health_flags: unplanned_variant 1 (3 users, example "onboarding: evil"), unplanned_experiment 1
  (onboarding), revenue_unreadable 0.
- the marts dbt derives from these (kpi_periods, lifecycle_periods, stickiness_periods, engagement_bands with
  its seed, retention_curve_cells[_by_dimension], cluster_feature_index) are built over them by the real dbt
  models (DERIVED_MARTS).
- two landing files: a.jsonl (100 in, 95 loaded, 2 duplicate, 3 rejected for two reasons), b.csv (50 in, 49 loaded,
  1 rejected); two batches, the latest quarantined.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from serving import PublishResult, publish
from stores.schema import connect, ensure
from tests.conftest import run_dbt

AS_OF = datetime(2026, 1, 20, 12, 0)
FIRST_DAY = date(2026, 1, 5)
DAYS = 14

USERS = [
    # user_id, lifecycle_stage, is_high_frequency, rfm_segment, engagement_score, recency, frequency, monetary
    ("u1", "active", True, "champions", 200.0, 5, 5, 5),
    ("u2", "active", False, "champions", 60.0, 5, 4, 4),
    ("u3", "at_risk", False, "loyal", 12.0, 3, 4, 3),
    ("u4", "lapsed", False, "hibernating", 0.0, 1, 2, 1),
    ("u5", "new", False, "loyal", 5.0, 5, 3, 2),
    ("u6", "lapsed", False, "lost", 0.0, 1, 1, 1),
]
LOW_DATA_USERS = ("u5", "u6")  # their clusters rest on too little data (ml.user_clusters.is_low_data)
CHURN = [("u1", 0.05, "low"), ("u2", 0.2, "low"), ("u3", 0.55, "medium"), ("u5", 0.7, "high"), ("u4", 0.9, "high")]


# marts the dashboard reads that dbt derives from the hand-written ones: built by the real dbt models
DERIVED_MARTS = (
    "engagement_band_thresholds", "engagement_bands", "kpi_periods", "lifecycle_periods", "retention_curve_cells",
    "retention_curve_cells_by_dimension", "cluster_feature_index", "stickiness_periods", "experiment_metric_results",
    "experiment_decisions",
)  # fmt: skip
DERIVED_FROM = {"marts.cluster_profiles": ("marts.cluster_feature_index",)}  # dropped with the table they read
# marts.cluster_profiles' feature columns, in order (macro cluster_profile_features)
PROFILE_FEATURES = (
    "active_days_per_week", "sessions_per_active_day", "events_per_session", "avg_session_minutes", "active_days_28",
    "tenure_days", "recency_days", "active_span_days", "orders_total", "orders_per_session", "avg_order_value",
    "revenue_total", "coupon_order_share", "feature_use_share", "page_view_share", "product_view_share",
    "cart_add_share", "search_share", "trend_28_90",
)  # fmt: skip
_BUILT: dict[int, Path] = {}  # dau_offset -> a finished warehouse file, so dbt runs once per variant per session


def build(warehouse: Path, *, dau_offset: int = 0, without: tuple[str, ...] = ()) -> None:
    """Write the tiny warehouse (dau_offset shifts every DAU, to tell two publishes apart; `without` drops tables)."""
    if dau_offset not in _BUILT:
        _BUILT[dau_offset] = _build_once(dau_offset)
    shutil.copyfile(_BUILT[dau_offset], warehouse)
    with connect(str(warehouse)) as con:
        for table in without:
            for dropped in (table, *DERIVED_FROM.get(table, ())):
                con.execute(f"drop table if exists {dropped}")


def _build_once(dau_offset: int) -> Path:
    """The hand-written tables and the derived marts dbt builds from them, in a folder of this session."""
    data_dir = Path(tempfile.mkdtemp(prefix="dashboard_warehouse_"))
    warehouse = data_dir / "warehouse.duckdb"
    with connect(str(warehouse)) as con:
        for schema in ("marts", "ml", "intermediate"):
            con.execute(f"create schema if not exists {schema}")
        ensure(con, "raw")
        con.execute("create or replace table intermediate.int_as_of as select ?::timestamp as as_of", [AS_OF])
        _kpis(con, dau_offset)
        _retention(con)
        _lifecycle(con)
        _segments(con)
        _ml(con)
        _experiments(con)
        _funnels(con)
        _paths(con)
        _raw(con)
    run_dbt(data_dir, "build", "--select", *DERIVED_MARTS, "--resource-type", "seed", "--resource-type", "model")
    return warehouse


def build_and_publish(data_dir: Path, **options: object) -> PublishResult:
    """Build the tiny warehouse under data_dir and publish data_dir/serving.duckdb from it."""
    warehouse = data_dir / "warehouse.duckdb"
    build(warehouse, **options)
    with connect(str(warehouse)) as con:
        return publish(con, data_dir / "serving.duckdb", data_dir / "exports")


def _kpis(con: duckdb.DuckDBPyConnection, dau_offset: int) -> None:
    rows = []
    for i in range(DAYS):
        dau = 10 + i + dau_offset
        rows.append(
            (FIRST_DAY + timedelta(days=i), dau, 20 + i + dau_offset, 30 + i + dau_offset, dau / (30 + i + dau_offset),
             2, i % 3, 10.0 * i, (i % 3) / dau)
        )  # fmt: skip
    con.execute(
        "create or replace table marts.daily_kpis (activity_date date, dau bigint, wau bigint, mau bigint, "
        "stickiness double, new_users bigint, orders bigint, revenue decimal(18, 4), conversion_rate double)"
    )
    con.executemany("insert into marts.daily_kpis values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        "create or replace table marts.kpi_alerts as select date '2026-01-10' as activity_date, 'revenue' as kpi, "
        "50.0 as value, 120.0 as expected, 80.0 as band_low, 160.0 as band_high, 'down' as direction"
    )


def _retention(con: duckdb.DuckDBPyConnection) -> None:
    # cohort, period, size, retained, unbounded, complete
    cells = [
        ("2026-01-05", 0, 10, 10, 10, True), ("2026-01-05", 1, 10, 6, 7, True), ("2026-01-05", 2, 10, 3, 3, False),
        ("2026-01-12", 0, 20, 20, 20, True), ("2026-01-12", 1, 20, 8, 8, False),
        ("2026-01-19", 0, 5, 5, 5, False),
    ]  # fmt: skip
    con.execute(
        "create or replace table marts.cohort_retention (grain varchar, cohort_start date, period_number integer, "
        "cohort_size bigint, returned_in_period_0 bigint, retained_users bigint, retention_rate double, "
        "retained_users_unbounded bigint, retention_rate_unbounded double, is_complete boolean)"
    )
    con.executemany(
        "insert into marts.cohort_retention values ('week', ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        [(c, k, n, r, r / n, u, u / n, done) for c, k, n, r, u, done in cells],
    )
    con.execute(
        "create or replace table marts.retention_curve as select grain, period_number, count(*) as cohorts, "
        "sum(cohort_size) as users_completed, sum(retained_users) as retained_users, "
        "sum(retained_users) * 1.0 / sum(cohort_size) as retention_rate, "
        "sum(retained_users_unbounded) as retained_users_unbounded, "
        "sum(retained_users_unbounded) * 1.0 / sum(cohort_size) as retention_rate_unbounded "
        "from marts.cohort_retention where is_complete group by all"
    )
    by_plan = [
        ("free", "2026-01-05", 0, 6, 6, 6, True), ("free", "2026-01-05", 1, 6, 4, 5, True),
        ("free", "2026-01-05", 2, 6, 2, 2, False), ("free", "2026-01-12", 0, 15, 15, 15, True),
        ("free", "2026-01-12", 1, 15, 5, 5, False), ("free", "2026-01-19", 0, 5, 5, 5, False),
        ("pro", "2026-01-05", 0, 4, 4, 4, True), ("pro", "2026-01-05", 1, 4, 2, 2, True),
        ("pro", "2026-01-05", 2, 4, 1, 1, False), ("pro", "2026-01-12", 0, 5, 5, 5, True),
        ("pro", "2026-01-12", 1, 5, 3, 3, False),
    ]  # fmt: skip
    con.execute(
        "create or replace table marts.cohort_retention_by_dimension (dimension varchar, dimension_value varchar, "
        "grain varchar, cohort_start date, period_number integer, cohort_size bigint, returned_in_period_0 bigint, "
        "retained_users bigint, retention_rate double, retained_users_unbounded bigint, "
        "retention_rate_unbounded double, is_complete boolean)"
    )
    con.executemany(
        "insert into marts.cohort_retention_by_dimension values ('plan', ?, 'week', ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        [(v, c, k, n, r, r / n, u, u / n, done) for v, c, k, n, r, u, done in by_plan],
    )


# funnel 'checkout' (3 steps, by device): week cohorts of Jan 5 and Jan 12 (the second still has open windows), and
# the whole history; users per breakdown value and step
FUNNEL_WEEKS = {
    ("2026-01-05", "mobile"): (10, 6, 3), ("2026-01-05", "desktop"): (10, 8, 2),
    ("2026-01-12", "mobile"): (20, 10, 2), ("2026-01-12", "desktop"): (0, 0, 0),
}  # fmt: skip
FUNNEL_STEP_NAMES = ("page_viewed", "product_added", "order_completed (revenue gte 10)")


def _funnels(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace table marts.funnel_conversion (funnel_id varchar, description varchar, ordering varchar, "
        "conversion_window bigint, window_unit varchar, grain varchar, cohort_start date, breakdown varchar, "
        "breakdown_value varchar, step_number integer, step_name varchar, users bigint, entered_users bigint, "
        "conversion_from_previous double, conversion_from_first double, median_seconds_from_previous double, "
        "p25_seconds_from_previous double, p75_seconds_from_previous double, p90_seconds_from_previous double, "
        "median_seconds_from_entry double, excluded_users bigint, users_window_open bigint, is_complete boolean)"
    )
    cells: dict[tuple[str, str, str], tuple[int, ...]] = {}

    def add(key: tuple[str, str, str], users: tuple[int, ...]) -> None:
        cells[key] = tuple(a + b for a, b in zip(cells.get(key, (0, 0, 0)), users, strict=True))

    for (week, device), users in FUNNEL_WEEKS.items():
        for value in (device, "(all)"):
            add(("week", week, value), users)
            add(("all", "2026-01-05", value), users)
    rows = []
    for (grain, week, value), users in cells.items():
        open_users = 3 if week == "2026-01-12" or grain == "all" else 0
        for n, count in enumerate(users, start=1):
            previous = users[n - 2] if n > 1 else None
            rows.append((
                "checkout", "Browsing to an order", "sequential", 7, "day", grain, week, "context:device.type",
                value, n, FUNNEL_STEP_NAMES[n - 1], count, users[0],
                1.0 if n == 1 else (count / previous if previous else None), count / users[0] if users[0] else None,
                None if n == 1 else 300.0 * n, None if n == 1 else 60.0, None if n == 1 else 3600.0,
                None if n == 1 else 86400.0 * n, 0.0 if n == 1 else 400.0 * n, 0, open_users, open_users == 0,
            ))  # fmt: skip
    con.executemany(f"insert into marts.funnel_conversion values ({', '.join(['?'] * 23)})", rows)
    con.execute(
        "create or replace table marts.audience_funnel_dropoffs as select * from (values "
        "('funnel_checkout_dropped_after_step_1', 'u4', timestamp '2026-01-13 10:00', null::timestamp, 'checkout', 1, "
        "timestamp '2026-01-06 10:00', timestamp '2026-01-06 10:00'), "
        "('funnel_checkout_dropped_after_step_2', 'u3', timestamp '2026-01-14 09:00', null::timestamp, 'checkout', 2, "
        "timestamp '2026-01-07 09:00', timestamp '2026-01-07 09:30')) "
        "as t(audience, user_id, entered_at, exited_at, funnel_id, dropped_after_step, entered_funnel_at, last_step_at)"
    )


# path 'after_signup': 4 users; node per step
PATH_USERS = {
    "u1": ("signed_up", "feature_used", "page_viewed"),
    "u2": ("signed_up", "feature_used", "(end)"),
    "u3": ("signed_up", "page_viewed", "feature_used"),
    "u4": ("signed_up", "(end)", "(end)"),
}


def _paths(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create or replace table path_nodes (user_id varchar, step_number integer, node varchar)")
    con.executemany(
        "insert into path_nodes values (?, ?, ?)",
        [(user, step, node) for user, nodes in PATH_USERS.items() for step, node in enumerate(nodes)],
    )
    con.execute(
        "create or replace table marts.path_steps as select 'after_signup' as path_id, step_number, node, "
        "count(*) as users, count(*) / 4.0 as share_of_users, 4 as path_users from path_nodes group by all"
    )
    con.execute(
        "create or replace table marts.path_transitions as select 'after_signup' as path_id, "
        "a.step_number as from_step, a.node as from_node, b.step_number as to_step, b.node as to_node, "
        "count(*) as users from path_nodes a "
        "join path_nodes b on a.user_id = b.user_id and b.step_number = a.step_number + 1 "
        "where not (a.node = '(end)' and b.node = '(end)') group by all"
    )
    con.execute(
        "create or replace table marts.path_top_sequences as select 'after_signup' as path_id, 1 as sequence_rank, "
        "'signed_up > feature_used > page_viewed' as sequence, 1 as users, 0.25 as share_of_users, 4 as path_users"
    )
    con.execute("drop table path_nodes")


def _lifecycle(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        ("2026-01-05", "new", 10), ("2026-01-12", "new", 20), ("2026-01-12", "returning", 6),
        ("2026-01-12", "dormant", 4), ("2026-01-19", "new", 5), ("2026-01-19", "returning", 8),
        ("2026-01-19", "resurrecting", 1), ("2026-01-19", "dormant", 18),
    ]  # fmt: skip
    con.execute(
        "create or replace table marts.lifecycle (grain varchar, period_start date, status varchar, users bigint)"
    )
    con.executemany("insert into marts.lifecycle values ('week', ?, ?, ?)", rows)
    con.execute(
        "create or replace table marts.stickiness (grain varchar, period_start date, active_days integer, "
        "active_users bigint, users_exactly bigint, users_at_least bigint, is_complete boolean)"
    )
    for period, exactly, complete in (
        ("2026-01-12", [10, 8, 4, 2, 1, 1, 0], True),
        ("2026-01-19", [10, 4, 0, 0, 0, 0, 0], False),
    ):
        total = sum(exactly)
        con.executemany(
            "insert into marts.stickiness values ('week', ?, ?, ?, ?, ?, ?)",
            [(period, n + 1, total, exactly[n], sum(exactly[n:]), complete) for n in range(7)],
        )


def _segments(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace table marts.user_segments (user_id varchar, first_active_at timestamp, "
        "last_active_at timestamp, days_since_last_active double, lifecycle_stage varchar, is_active_recent boolean, "
        "is_lapsed boolean, is_high_frequency boolean, sessions_recent bigint, frequency_active_days bigint, "
        "monetary_revenue decimal(18, 4), recency_score integer, frequency_score integer, monetary_score integer, "
        "rfm_segment varchar, engagement_score double)"
    )
    con.executemany(
        "insert into marts.user_segments values (?, ?, ?, ?, ?, ?, ?, ?, 3, 10, 100, ?, ?, ?, ?, ?)",
        [
            (user, AS_OF - timedelta(days=40), AS_OF - timedelta(days=n), float(n), stage, stage in ("active", "new"),
             stage == "lapsed", high, r, f, m, segment, score)
            for n, (user, stage, high, segment, score, r, f, m) in enumerate(USERS)
        ],
    )  # fmt: skip
    # the profile columns of the real mart: active days a week and revenue set, the other features 1.0
    features = PROFILE_FEATURES[1:11] + PROFILE_FEATURES[12:]
    con.execute(
        "create or replace table marts.cluster_profiles as select *, "
        + ", ".join(f"1.0 as {feature}" for feature in features)
        + " from (values (0, 'power users', '1', 2, 1 / 3, 0.8, 0, 0.0, 10.0, 100.0), "
        "(1, 'casual', '1', 4, 2 / 3, 0.3, 2, 0.5, 2.0, 10.0)) t(cluster_id, cluster_name, model_version, users, "
        "share_of_users, mean_confidence, low_data_users, low_data_share, active_days_per_week, revenue_total)"
    )


def _ml(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace table ml.churn_scores (user_id varchar, churn_probability double, risk_tier varchar, "
        "as_of timestamp, model_version varchar)"
    )
    con.executemany("insert into ml.churn_scores values (?, ?, ?, ?, '3')", [(*row, AS_OF) for row in CHURN])
    con.execute(
        "create or replace table ml.model_metrics (model_name varchar, model_version varchar, is_champion boolean, "
        "trained_at timestamp, as_of timestamp, metric varchar, value double, run_id varchar)"
    )
    con.executemany(
        "insert into ml.model_metrics values ('churn', ?, ?, ?, ?, ?, ?, ?)",
        [
            ("2", False, datetime(2026, 1, 10), datetime(2026, 1, 9), "roc_auc", 0.7, "run2"),
            ("3", True, datetime(2026, 1, 20, 13), AS_OF, "roc_auc", 0.81, "run3"),
            ("3", True, datetime(2026, 1, 20, 13), AS_OF, "pr_auc", 0.6, "run3"),
        ],
    )
    con.execute(
        "create or replace table ml.user_clusters as select user_id, case when user_id in ('u1', 'u2') then 0 else 1 "
        "end as cluster_id, case when user_id in ('u1', 'u2') then 'power users' else 'casual' end as cluster_name, "
        # the two casual users placed on three actions rest on too little data
        "case when user_id in ('u1', 'u2') then 0.8 else 0.3 end as confidence, "
        f"case when user_id in {LOW_DATA_USERS} then 3 else 40 end as events, "
        f"user_id in {LOW_DATA_USERS} as is_low_data, '1' as model_version from marts.user_segments"
    )


def _experiments(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace table marts.experiment_results as select * from (values "
        "('checkout_button', 'control', true, 200, 20, 0.10, 0.066, 0.149, null, null, null, null, 0.75, false, 5.0,"
        " 4.0, 6.0), "
        "('checkout_button', 'green', false, 210, 42, 0.20, 0.151, 0.259, 1.0, 0.3, 1.7, 0.004, 0.75, false, 7.0,"
        " 6.0, 8.0), "
        "('onboarding', 'control', true, 40, 8, 0.20, 0.105, 0.348, null, null, null, null, 0.0001, true, 3.0,"
        " 1.0, 5.0), "
        "('onboarding', 'short', false, 35, 8, 0.2286, 0.121, 0.39, 0.14, -0.5, 0.7, 0.77, 0.0001, true, 3.5,"
        " 1.5, 5.5), "
        "('onboarding', 'evil', false, 3, 1, 0.3333, 0.06, 0.79, null, null, null, null, 0.0001, true, 1.0,"
        " 0.0, 2.0)) "
        "t(experiment_id, variant, is_control, users, conversions, conversion_rate, ci_low, ci_high, lift_vs_control, "
        "lift_ci_low, lift_ci_high, p_value, srm_p_value, is_underpowered, revenue_per_user, "
        "revenue_per_user_ci_low, revenue_per_user_ci_high)"
    )
    con.execute(
        "create or replace table marts.experiment_results as select *, experiment_id = 'checkout_button' as "
        "is_planned_experiment, variant <> 'evil' as is_planned_variant, case when experiment_id = 'onboarding' "
        "then 3 else 0 end as unplanned_users, 1 as variant_names, null::varchar as config_error "
        "from marts.experiment_results"
    )
    settings = "'control', 'control=1;green=1', null, 'holm', 0.10, 14"
    con.execute(
        "create or replace table intermediate.int_experiment_metric_moments as select * from (values "
        f"('checkout_button', 'conversion', 'conversion', 'control', 'primary', 'increase', null, 0, null, {settings},"
        " 200, 200, 20.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "
        f"('checkout_button', 'conversion', 'conversion', 'green', 'primary', 'increase', null, 0, null, {settings},"
        " 210, 210, 42.0, 42.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "
        f"('checkout_button', 'refunds', 'count', 'control', 'guardrail', 'decrease', 0.05, 0, null, {settings},"
        " 200, 200, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "
        f"('checkout_button', 'refunds', 'count', 'green', 'guardrail', 'decrease', 0.05, 0, null, {settings},"
        " 210, 210, 11.0, 11.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)) "
        "t(experiment_id, metric, kind, variant, role, direction, tolerance, pre_period_days, cap_value, "
        "control_variant, planned_split, factors, correction, target_lift, exposure_days, users, "
        "users_window_complete, sum_y, sum_y2, sum_x, sum_x2, sum_xy, sum_d, sum_d2, sum_yd)"
    )
    con.execute(
        "create or replace table marts.data_health_flags as select * from (values "
        "('unplanned_variant', 1, 3, 'onboarding: evil', 'marts.experiment_results', 'Variants not planned'), "
        "('unplanned_experiment', 1, 78, 'onboarding', 'marts.experiment_results', 'Experiments not in the seed'), "
        "('revenue_unreadable', 0, 0, null, 'staging.stg_events', 'Unreadable revenue')) "
        "t(flag, flagged, users, example, flagged_in, description)"
    )


def _raw(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("raw.load_manifest", "raw.events_rejected", "raw.batches"):
        con.execute(f"delete from {table}")
    loaded = datetime(2026, 1, 20, 12, 30)
    con.executemany(
        "insert into raw.load_manifest (file_name, checksum, file_size, file_mtime, rows_in, rows_loaded, "
        "rows_duplicate, rows_rejected, status, detail, loaded_at, load_seconds, batch_id, gate_status) "
        "values (?, ?, 1000, 0, ?, ?, ?, ?, 'loaded', null, ?, 0.5, ?, ?)",
        [
            ("a.jsonl", "c1", 100, 95, 2, 3, loaded - timedelta(hours=1), "batch1", "passed"),
            ("b.csv", "c2", 50, 49, 0, 1, loaded, "batch2", "quarantined"),
        ],
    )
    con.executemany(
        "insert into raw.events_rejected values (?, ?, ?, ?, ?)",
        [
            ("a.jsonl", 7, "missing message_id", '{"user_id": "u1"}', loaded),
            ("a.jsonl", 3, "missing message_id", '{"user_id": "u2"}', loaded),
            ("a.jsonl", 9, "unknown type: click", '{"type": "click"}', loaded),
            ("b.csv", 2, "unparseable timestamp: yesterday", "m9,u3,track,x,yesterday", loaded),
        ],
    )
    con.executemany(
        "insert into raw.batches values (?, ?, 1, ?, ?, ?, ?, ?)",
        [
            ("batch1", loaded - timedelta(hours=1), 100, 95, "passed", None, loaded - timedelta(hours=1)),
            ("batch2", loaded, 50, 49, "quarantined", "volume: 49 rows loaded is 0.01x the trailing average", loaded),
        ],
    )
    con.execute("delete from raw.events")
    con.execute(
        "insert into raw.events values ('m1', 'u1', null, 'track', 'Order Completed', ?, ?, null, null, null, "
        "'a.jsonl', 1, ?)",
        [AS_OF, AS_OF, loaded],
    )
