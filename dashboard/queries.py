"""What each page shows, as plain functions over the serving copy (no Streamlit here, so tests call them directly).

Every function takes a ServingCopy and filter values and returns a DataFrame (or a small value); values reach SQL
only as parameters. Rates that pages aggregate are recomputed from counts (sum of retained / sum of cohort sizes),
never averaged.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from dashboard.source import ServingCopy

GRAINS = ("day", "week", "month")
DIMENSIONS = {"first_touch_channel": "channel", "country": "country", "plan": "plan"}
KPI_COLUMNS = ("dau", "wau", "mau", "stickiness", "new_users", "orders", "revenue", "conversion_rate")
LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")


def _in(values: tuple | list) -> list:
    """A list parameter for `in (select unnest(?))`."""
    return list(values)


# --- every page -----------------------------------------------------------------------------------------------


def publish_info(db: ServingCopy) -> dict | None:
    """meta.publish as a dict (published_at, as_of, latest_event_at, latest_load_at), or None before a publish."""
    if "meta.publish" not in db.tables():
        return None
    rows = db.query("select * from meta.publish").to_dict("records")
    if not rows:
        return None
    info = rows[0]
    info.setdefault("as_of", info.get("latest_event_at"))  # copies published before as_of was recorded
    return {key: (None if pd.isna(value) else value) for key, value in info.items()}


def table_rows(db: ServingCopy, tables: tuple[str, ...]) -> dict[str, int | None]:
    """Rows of each named table ('schema.table'), None for a table the copy does not have."""
    present = db.tables()
    counts: dict[str, int | None] = {}
    for name in tables:
        if name not in present:
            counts[name] = None
            continue
        schema, table = name.split(".")
        counts[name] = int(db.query(f'select count(*) as n from "{schema}"."{table}"')["n"].iloc[0])
    return counts


# --- overview -------------------------------------------------------------------------------------------------


def kpi_date_bounds(db: ServingCopy) -> tuple[date, date] | None:
    """First and last day of marts.daily_kpis."""
    row = db.query("select min(activity_date) as first, max(activity_date) as last from marts.daily_kpis").iloc[0]
    return None if pd.isna(row["first"]) else (row["first"].date(), row["last"].date())


def kpi_trend(db: ServingCopy, start: date, end: date, grain: str) -> pd.DataFrame:
    """marts.kpi_periods of a grain for the periods that overlap start..end (whole periods; the mart's yml says how
    each KPI rolls up)."""
    _check_grain(grain)
    return db.query(
        "select period_start, days, dau, wau, mau, stickiness, new_users::bigint as new_users, "
        "orders::bigint as orders, revenue::double as revenue, conversion_rate from marts.kpi_periods "
        "where grain = ? and period_start <= ? and period_start >= date_trunc(?, ?::date) order by 1",
        [grain, end, grain, start],
    )


def number(value: float) -> str:
    """A KPI value for a sentence: whole numbers with separators from 100 up, three significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def alert_sentence(
    kpi: str, activity_date: date, value: float, expected: float, low: float, high: float, direction: str
) -> str:
    """'revenue on 2026-01-10 was 50, below its usual range (80 to 160, expected 120)'."""
    side = {"up": "above", "down": "below"}.get(direction, direction)
    return (
        f"{kpi} on {activity_date:%Y-%m-%d} was {number(value)}, {side} its usual range ({number(low)} to "
        f"{number(high)}, expected {number(expected)})"
    )


def kpi_alerts(db: ServingCopy, start: date, end: date) -> pd.DataFrame:
    """marts.kpi_alerts between start and end."""
    return db.query(
        "select activity_date, kpi, value::double as value, expected::double as expected, "
        "band_low::double as band_low, band_high::double as band_high, direction from marts.kpi_alerts "
        "where activity_date between ? and ? order by activity_date, kpi",
        [start, end],
    )


# --- retention ------------------------------------------------------------------------------------------------


def cohort_starts(db: ServingCopy, grain: str) -> list[date]:
    """Every cohort start of a grain in marts.cohort_retention, oldest first."""
    _check_grain(grain)
    rows = db.query("select distinct cohort_start from marts.cohort_retention where grain = ? order by 1", [grain])
    return [value.date() for value in rows["cohort_start"]]


def dimension_values(db: ServingCopy, dimension: str) -> list[str]:
    """Values of one dimension in marts.cohort_retention_by_dimension, biggest first."""
    _check_dimension(dimension)
    rows = db.query(
        "select dimension_value, sum(cohort_size) as users from marts.cohort_retention_by_dimension "
        "where dimension = ? and grain = 'week' and period_number = 0 group by 1 order by 2 desc, 1",
        [dimension],
    )
    return list(rows["dimension_value"])


def _retention_source(grain: str, dimension: str | None, values: tuple[str, ...]) -> tuple[str, list]:
    """A subquery of retention cells (one cohort x period each) for the grain, optionally for dimension values."""
    _check_grain(grain)
    if dimension is None:
        return (
            "select cohort_start, period_number, cohort_size, retained_users, retained_users_unbounded, is_complete "
            "from marts.cohort_retention where grain = ?",
            [grain],
        )
    _check_dimension(dimension)
    value_filter = "and dimension_value in (select unnest(?))" if values else ""
    return (
        "select cohort_start, period_number, sum(cohort_size) as cohort_size, sum(retained_users) as retained_users, "
        "sum(retained_users_unbounded) as retained_users_unbounded, bool_and(is_complete) as is_complete "
        "from marts.cohort_retention_by_dimension where grain = ? and dimension = ? "
        f"{value_filter} group by 1, 2",
        [grain, dimension, *([_in(values)] if values else [])],
    )


def retention_matrix(
    db: ServingCopy,
    grain: str,
    first_cohort: date,
    last_cohort: date,
    *,
    dimension: str | None = None,
    values: tuple[str, ...] = (),
    max_period: int | None = None,
) -> pd.DataFrame:
    """The cohort x period cells between two cohort starts, classic and unbounded, with is_complete."""
    source, params = _retention_source(grain, dimension, values)
    return db.query(
        "select cohort_start::date as cohort_start, period_number::integer as period_number, "
        "cohort_size::bigint as cohort_size, retained_users::bigint as retained_users, "
        "retained_users / cohort_size as retention_rate, "
        "retained_users_unbounded::bigint as retained_users_unbounded, "
        "retained_users_unbounded / cohort_size as retention_rate_unbounded, is_complete "
        f"from ({source}) cells where cohort_start between ? and ? and period_number <= coalesce(?, period_number) "
        "order by cohort_start, period_number",
        [*params, first_cohort, last_cohort, max_period],
    )


def retention_average(
    db: ServingCopy,
    grain: str,
    first_cohort: date,
    last_cohort: date,
    *,
    dimension: str | None = None,
    values: tuple[str, ...] = (),
    split: bool = False,
    max_period: int | None = None,
) -> pd.DataFrame:
    """The average curve of the chosen cohorts: the sum of their complete cells in marts.retention_curve_cells (or
    _by_dimension), weighted over complete cells only as that mart defines (marts.retention_curve for all cohorts).

    With split, one curve per dimension value (values empty: every value).
    """
    _check_grain(grain)
    if dimension is None:
        source, params = "marts.retention_curve_cells where grain = ?", [grain]
    else:
        _check_dimension(dimension)
        value_filter = "and dimension_value in (select unnest(?))" if values else ""
        source = f"marts.retention_curve_cells_by_dimension where grain = ? and dimension = ? {value_filter}"
        params = [grain, dimension, *([_in(values)] if values else [])]
    segment = "dimension_value" if split else "'all cohorts'"
    return db.query(
        f"select {segment} as segment, period_number::integer as period_number, count(distinct cohort_start) as "
        "cohorts, sum(users_completed)::bigint as users_completed, sum(retained_users)::bigint as retained_users, "
        "sum(retained_users) / sum(users_completed) as retention_rate, "
        "sum(retained_users_unbounded)::bigint as retained_users_unbounded, "
        "sum(retained_users_unbounded) / sum(users_completed) as retention_rate_unbounded "
        f"from {source} and cohort_start between ? and ? and period_number <= coalesce(?, period_number) "
        "group by 1, 2 order by 1, 2",
        [*params, first_cohort, last_cohort, max_period],
    )


# --- lifecycle and stickiness ---------------------------------------------------------------------------------


def lifecycle_bounds(db: ServingCopy, grain: str) -> tuple[date, date] | None:
    """First and last period start of marts.lifecycle for a grain."""
    _check_grain(grain)
    row = db.query(
        "select min(period_start) as first, max(period_start) as last from marts.lifecycle where grain = ?", [grain]
    ).iloc[0]
    return None if pd.isna(row["first"]) else (row["first"].date(), row["last"].date())


def lifecycle(db: ServingCopy, grain: str, start: date, end: date) -> pd.DataFrame:
    """marts.lifecycle for periods starting between start and end, every status on every period (zeros filled),
    with signed_users negative for dormant."""
    _check_grain(grain)
    return db.query(
        "with periods as (select distinct period_start from marts.lifecycle where grain = ? "
        "  and period_start between ? and ?), "
        "statuses as (select unnest(?) as status, generate_subscripts(?, 1) as status_order) "
        "select p.period_start::date as period_start, s.status, s.status_order, coalesce(l.users, 0) as users, "
        "case when s.status = 'dormant' then -coalesce(l.users, 0) else coalesce(l.users, 0) end as signed_users "
        "from periods p cross join statuses s left join marts.lifecycle l on l.grain = ? "
        "and l.period_start = p.period_start and l.status = s.status order by 1, s.status_order",
        [grain, start, end, _in(LIFECYCLE_STATUSES), _in(LIFECYCLE_STATUSES), grain],
    )


def lifecycle_periods(db: ServingCopy, grain: str, start: date, end: date) -> pd.DataFrame:
    """marts.lifecycle_periods: one row per period starting between start and end, a column per status and the
    quick ratio."""
    _check_grain(grain)
    return db.query(
        "select period_start::date as period_start, new_users::bigint as new, returning_users::bigint as returning, "
        "resurrecting_users::bigint as resurrecting, dormant_users::bigint as dormant, quick_ratio "
        "from marts.lifecycle_periods "
        "where grain = ? and period_start between ? and ? order by 1",
        [grain, start, end],
    )


def stickiness_periods(db: ServingCopy, grain: str) -> pd.DataFrame:
    """marts.stickiness_periods for a grain (week or month), newest first: active users, their average active days,
    is_complete."""
    return db.query(
        "select period_start::date as period_start, active_users::bigint as active_users, avg_active_days, "
        "is_complete from marts.stickiness_periods where grain = ? order by 1 desc",
        [grain],
    )


def stickiness(db: ServingCopy, grain: str, period_start: date) -> pd.DataFrame:
    """Users active on exactly N and at least N days of one period, with their shares of the period's users."""
    return db.query(
        "select active_days, active_users::bigint as active_users, users_exactly::bigint as users_exactly, "
        "users_at_least::bigint as users_at_least, users_exactly / active_users as share_exactly, "
        "users_at_least / active_users as share_at_least, is_complete "
        "from marts.stickiness where grain = ? and period_start = ? order by active_days",
        [grain, period_start],
    )


# --- segments -------------------------------------------------------------------------------------------------


def lifecycle_stages(db: ServingCopy) -> list[str]:
    """The lifecycle stages present in marts.user_segments."""
    return list(db.query("select distinct lifecycle_stage from marts.user_segments order by 1")["lifecycle_stage"])


def rfm_segments(db: ServingCopy, stages: tuple[str, ...] = (), high_frequency_only: bool = False) -> pd.DataFrame:
    """Users per RFM segment with their share and average profile, among the users of the chosen stages."""
    return db.query(
        "with chosen as (select * from marts.user_segments where (len(?) = 0 or lifecycle_stage in "
        "(select unnest(?))) and (not ? or is_high_frequency)) "
        "select rfm_segment, count(*) as users, count(*) / sum(count(*)) over () as share_of_users, "
        "avg(recency_score) as avg_recency_score, avg(frequency_score) as avg_frequency_score, "
        "avg(monetary_score) as avg_monetary_score, avg(days_since_last_active) as avg_days_since_active, "
        "avg(frequency_active_days) as avg_active_days_90d, avg(monetary_revenue)::double as avg_revenue_365d, "
        "avg(engagement_score) as avg_engagement_score "
        "from chosen group by rfm_segment order by users desc, rfm_segment",
        [_in(stages), _in(stages), high_frequency_only],
    )


def engagement_bands(db: ServingCopy, stages: tuple[str, ...] = ()) -> pd.DataFrame:
    """Users per engagement band (marts.engagement_bands, every band listed) among the users of the chosen stages."""
    return db.query(
        "with chosen as (select band_order, band, min_score, coalesce(sum(users) filter (where len(?) = 0 or "
        "lifecycle_stage in (select unnest(?))), 0)::bigint as users from marts.engagement_bands group by all) "
        "select band, min_score, users, coalesce(users / nullif(sum(users) over (), 0), 0) as share_of_users "
        "from chosen order by band_order",
        [_in(stages), _in(stages)],
    )


def cluster_sizes(db: ServingCopy, with_low_data: bool = True) -> pd.DataFrame:
    """Users per cluster from ml.user_clusters, with their mean confidence; without the users whose cluster rests
    on too little data (is_low_data) unless `with_low_data`."""
    return db.query(
        "select cluster_id, cluster_name, count(*) as users, count(*) / sum(count(*)) over () as share_of_users, "
        "avg(confidence) as mean_confidence, max(model_version) as model_version from ml.user_clusters "
        "where ? or not coalesce(is_low_data, false) group by 1, 2 order by users desc, cluster_id",
        [with_low_data],
    )


def churn_model_versions(db: ServingCopy) -> list[str]:
    """Model versions that wrote ml.churn_scores."""
    rows = db.query("select distinct model_version from ml.churn_scores where model_version is not null order by 1")
    return list(rows["model_version"])


def cluster_profiles(db: ServingCopy) -> pd.DataFrame:
    """marts.cluster_profiles ordered by size."""
    return db.query("select * from marts.cluster_profiles order by users desc, cluster_id")


def cluster_feature_index(db: ServingCopy) -> pd.DataFrame:
    """marts.cluster_feature_index: each cluster's mean of each profile feature against all users' (index 1 = the
    same)."""
    return db.query(
        'select cluster_name, feature, value, overall, feature_index as "index" from marts.cluster_feature_index '
        "order by cluster_id, feature_order"
    )


# --- churn ----------------------------------------------------------------------------------------------------


def risk_tiers(db: ServingCopy, segments: tuple[str, ...] = ()) -> pd.DataFrame:
    """Users per risk tier of ml.churn_scores (lowest average probability first), optionally for RFM segments."""
    join, params = _segment_join(segments)
    return db.query(
        "select c.risk_tier, count(*) as users, count(*) / sum(count(*)) over () as share_of_users, "
        "avg(c.churn_probability) as avg_probability, min(c.churn_probability) as min_probability, "
        f"max(c.churn_probability) as max_probability from ml.churn_scores c {join} "
        "group by 1 order by avg_probability",
        params,
    )


def score_histogram(db: ServingCopy, segments: tuple[str, ...] = (), bins: int = 20) -> pd.DataFrame:
    """Users per churn-probability bin (width 1/bins) and risk tier."""
    join, params = _segment_join(segments)
    return db.query(
        "select least(floor(c.churn_probability * ?), ? - 1) / ? as bin_start, "
        "(least(floor(c.churn_probability * ?), ? - 1) + 1) / ? as bin_end, c.risk_tier, count(*) as users "
        f"from ml.churn_scores c {join} group by all order by 1, 3",
        [bins, bins, bins, bins, bins, bins, *params],
    )


def at_risk_users(
    db: ServingCopy, tiers: tuple[str, ...], min_probability: float = 0.0, segments: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Scored users of the chosen tiers at or above min_probability, riskiest first, with what we know of them."""
    has_segments = "marts.user_segments" in db.tables()
    details = (
        "s.rfm_segment, s.lifecycle_stage, s.last_active_at, round(s.days_since_last_active, 1) as "
        "days_since_last_active, s.engagement_score, s.monetary_revenue::double as revenue_365d"
        if has_segments
        else "null as rfm_segment"
    )
    join = "left join marts.user_segments s using (user_id)" if has_segments else ""
    segment_filter = "and s.rfm_segment in (select unnest(?))" if segments and has_segments else ""
    return db.query(
        f"select c.user_id, c.churn_probability, c.risk_tier, {details}, c.model_version, c.as_of "
        f"from ml.churn_scores c {join} where c.risk_tier in (select unnest(?)) and c.churn_probability >= ? "
        f"{segment_filter} order by c.churn_probability desc, c.user_id",
        [_in(tiers), min_probability, *([_in(segments)] if segment_filter else [])],
    )


def _segment_join(segments: tuple[str, ...]) -> tuple[str, list]:
    if not segments:
        return "", []
    return "join marts.user_segments s using (user_id) where s.rfm_segment in (select unnest(?))", [_in(segments)]


def rfm_segment_names(db: ServingCopy) -> list[str]:
    """RFM segment names in marts.user_segments."""
    return list(db.query("select distinct rfm_segment from marts.user_segments order by 1")["rfm_segment"])


def champion_metrics(db: ServingCopy) -> pd.DataFrame:
    """The champion models' holdout metrics from ml.model_metrics (latest training of each champion)."""
    return db.query(
        "with champions as (select model_name, max(trained_at) as trained_at from ml.model_metrics "
        "where is_champion group by 1) "
        "select m.model_name, m.model_version, m.trained_at, m.as_of, m.metric, m.value::double as value, m.run_id "
        "from ml.model_metrics m join champions c using (model_name, trained_at) where m.is_champion "
        "order by m.model_name, m.metric"
    )


# --- experiments ----------------------------------------------------------------------------------------------


def experiment_ids(db: ServingCopy) -> list[str]:
    """Experiments in marts.experiment_results, most users first."""
    rows = db.query(
        "select experiment_id from marts.experiment_results group by 1 order by sum(users) desc, experiment_id"
    )
    return list(rows["experiment_id"])


def experiment_results(db: ServingCopy, experiments: tuple[str, ...] = ()) -> pd.DataFrame:
    """marts.experiment_results for the chosen experiments (all when none), control first."""
    return db.query(
        "select * from marts.experiment_results where len(?) = 0 or experiment_id in (select unnest(?)) "
        "order by experiment_id, not is_control, variant",
        [_in(experiments), _in(experiments)],
    )


def experiment_decisions(db: ServingCopy, experiments: tuple[str, ...] = ()) -> pd.DataFrame:
    """marts.experiment_decisions for the chosen experiments (all when none)."""
    return db.query(
        "select * from marts.experiment_decisions where len(?) = 0 or experiment_id in (select unnest(?)) "
        "order by experiment_id",
        [_in(experiments), _in(experiments)],
    )


def experiment_metric_results(db: ServingCopy, experiments: tuple[str, ...] = ()) -> pd.DataFrame:
    """marts.experiment_metric_results' compared rows (planned treatment variants) for the chosen experiments:
    primary metrics first, then secondary, then guardrails."""
    return db.query(
        "select * from marts.experiment_metric_results where (len(?) = 0 or experiment_id in (select unnest(?))) "
        "and not is_control and is_planned_variant "
        "order by experiment_id, case role when 'primary' then 0 when 'secondary' then 1 else 2 end, metric, variant",
        [_in(experiments), _in(experiments)],
    )


# --- funnels and paths ---------------------------------------------------------------------------------------


def funnel_ids(db: ServingCopy) -> list[str]:
    """Funnels in marts.funnel_conversion, most entered users first."""
    rows = db.query(
        "select funnel_id from marts.funnel_conversion where grain = 'all' and breakdown_value = '(all)' "
        "and step_number = 1 group by 1 order by sum(users) desc, funnel_id"
    )
    return list(rows["funnel_id"])


def funnel_settings(db: ServingCopy, funnel_id: str) -> dict:
    """A funnel's description, ordering and conversion window."""
    rows = db.query(
        "select description, ordering, conversion_window, window_unit from marts.funnel_conversion "
        "where funnel_id = ? limit 1",
        [funnel_id],
    ).to_dict("records")
    row = rows[0] if rows else {}
    return {key: (None if pd.isna(value) else value) for key, value in row.items()}


def funnel_cohort_bounds(db: ServingCopy, funnel_id: str, grain: str) -> tuple[date, date] | None:
    """First and last cohort of a funnel at a grain."""
    _check_grain(grain)
    row = db.query(
        "select min(cohort_start) as first, max(cohort_start) as last from marts.funnel_conversion "
        "where funnel_id = ? and grain = ?",
        [funnel_id, grain],
    ).iloc[0]
    return None if pd.isna(row["first"]) else (pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date())


def funnel_steps(
    db: ServingCopy, funnel_id: str, grain: str = "all", start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Per breakdown value and step: users and conversion. grain 'all' reads the whole-history rows with their time
    to convert; a grain with a range sums the cohorts from start to end and recomputes the rates from the counts
    (times to convert do not add up across cohorts, so they are left out)."""
    if grain == "all":
        return db.query(
            "select breakdown, breakdown_value, step_number, step_name, users, entered_users, "
            "conversion_from_previous, conversion_from_first, median_seconds_from_previous, "
            "p25_seconds_from_previous, p75_seconds_from_previous, p90_seconds_from_previous, "
            "median_seconds_from_entry, excluded_users, users_window_open, is_complete "
            "from marts.funnel_conversion where funnel_id = ? and grain = 'all' order by breakdown_value, step_number",
            [funnel_id],
        )
    _check_grain(grain)
    return db.query(
        """
        with summed as (
            select breakdown, breakdown_value, step_number, step_name, sum(users) as users,
                sum(entered_users) as entered_users, sum(excluded_users) as excluded_users,
                sum(users_window_open) as users_window_open, bool_and(is_complete) as is_complete
            from marts.funnel_conversion
            where funnel_id = ? and grain = ? and cohort_start between ? and ?
            group by all
        )
        select *,
            users / nullif(lag(users) over (partition by breakdown_value order by step_number), 0)
                as conversion_from_previous,
            users / nullif(entered_users, 0) as conversion_from_first
        from summed
        order by breakdown_value, step_number
        """,
        [funnel_id, grain, start, end],
    ).assign(conversion_from_previous=lambda f: f["conversion_from_previous"].where(f["step_number"] > 1, 1.0))


def funnel_trend(db: ServingCopy, funnel_id: str, grain: str) -> pd.DataFrame:
    """Per cohort (everyone): users entering and converting through the last step, and the conversion."""
    _check_grain(grain)
    return db.query(
        "select cohort_start, entered_users, users as converted_users, conversion_from_first, is_complete "
        "from marts.funnel_conversion where funnel_id = ? and grain = ? and breakdown_value = '(all)' "
        "and step_number = (select max(step_number) from marts.funnel_conversion where funnel_id = ?) "
        "order by cohort_start",
        [funnel_id, grain, funnel_id],
    ).assign(cohort_start=lambda f: pd.to_datetime(f["cohort_start"]).dt.date)


def funnel_dropoffs(db: ServingCopy, funnel_id: str, after_step: int) -> pd.DataFrame:
    """Users who dropped off after a step (marts.audience_funnel_dropoffs), latest first."""
    return db.query(
        "select user_id, entered_funnel_at, last_step_at, entered_at as window_ended_at, audience "
        "from marts.audience_funnel_dropoffs where funnel_id = ? and dropped_after_step = ? "
        "order by entered_at desc, user_id",
        [funnel_id, int(after_step)],
    )


def path_ids(db: ServingCopy) -> list[str]:
    """Paths in marts.path_steps, most users first."""
    rows = db.query("select path_id from marts.path_steps group by 1 order by max(path_users) desc, path_id")
    return list(rows["path_id"])


def path_steps(db: ServingCopy, path_id: str) -> pd.DataFrame:
    """The step matrix of a path (step, node, users, share)."""
    return db.query(
        "select step_number, node, users, share_of_users from marts.path_steps where path_id = ? "
        "order by step_number, users desc, node",
        [path_id],
    )


def path_transitions(db: ServingCopy, path_id: str) -> pd.DataFrame:
    """The flows of a path between consecutive steps."""
    return db.query(
        "select from_step, from_node, to_step, to_node, users from marts.path_transitions where path_id = ? "
        "order by from_step, users desc, from_node, to_node",
        [path_id],
    )


def path_top_sequences(db: ServingCopy, path_id: str) -> pd.DataFrame:
    """The most common complete paths of a path."""
    return db.query(
        "select sequence_rank, sequence, users, share_of_users from marts.path_top_sequences where path_id = ? "
        "order by sequence_rank",
        [path_id],
    )


# --- data health ----------------------------------------------------------------------------------------------


def data_health_flags(db: ServingCopy) -> pd.DataFrame:
    """marts.data_health_flags: one row per kind of flagged client value, the flagged ones first."""
    return db.query(
        "select flag, flagged, users, example, flagged_in, description from marts.data_health_flags "
        "order by flagged = 0, flagged desc, flag"
    )


def load_manifest(db: ServingCopy, only_with_rejects: bool = False) -> pd.DataFrame:
    """ops.load_manifest, newest load first."""
    return db.query(
        "select file_name, status, gate_status, rows_in, rows_loaded, rows_duplicate, rows_rejected, "
        "coalesce(rows_erased, 0) as rows_erased, "
        "rows_loaded + rows_duplicate + rows_rejected + coalesce(rows_erased, 0) = rows_in as reconciles, detail, "
        "batch_id, loaded_at, "
        "load_seconds from ops.load_manifest where not ? or rows_rejected > 0 order by loaded_at desc, file_name",
        [only_with_rejects],
    )


def rejects(db: ServingCopy, files: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rejected rows per file and reason (ops.rejects_by_file_reason) with a sample line, most first."""
    return db.query(
        "select source_file, reason, rejected_rows, first_line_number, sample_line, last_rejected_at "
        "from ops.rejects_by_file_reason where len(?) = 0 or source_file in (select unnest(?)) "
        "order by rejected_rows desc, source_file, reason",
        [_in(files), _in(files)],
    )


def rejects_by_reason(db: ServingCopy, files: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rejected rows per reason (ops.rejects_by_file_reason summed over the chosen files, all when none)."""
    return db.query(
        "select reason, sum(rejected_rows)::bigint as rejected_rows, count(distinct source_file) as files "
        "from ops.rejects_by_file_reason where len(?) = 0 or source_file in (select unnest(?)) "
        "group by reason order by rejected_rows desc, reason",
        [_in(files), _in(files)],
    )


def batches(db: ServingCopy, limit: int = 20) -> pd.DataFrame:
    """The latest ingestion batches with the gate's verdict and reasons, newest first."""
    return db.query("select * from ops.batches order by started_at desc limit ?", [limit])


# --- checks ---------------------------------------------------------------------------------------------------


def _check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")


def _check_dimension(dimension: str) -> None:
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}, not {dimension!r}")


def age_in_words(then: datetime | None, now: datetime) -> str:
    """'3 min', '5 h 12 min', '2 d 4 h' between two naive UTC datetimes."""
    if then is None:
        return "unknown"
    seconds = max(0, int((now - then).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"
