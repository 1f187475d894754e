"""Lifecycle and stickiness: new / returning / resurrecting / dormant users per period, and active days per user."""

from datetime import timedelta

import streamlit as st

from dashboard import charts, queries, ui

DEFAULT_DAYS = {"day": 60, "week": 26 * 7, "month": 366}


def lifecycle_section() -> None:
    """Lifecycle bars with the latest period's counts and quick ratio."""
    st.subheader("Lifecycle")
    if not ui.need("marts.lifecycle", "marts.lifecycle_periods", what="the lifecycle chart"):
        return
    with st.sidebar:
        st.subheader("Filters")
        grain = st.segmented_control(
            "Lifecycle grain", list(queries.GRAINS), default="week", key="lifecycle_grain", required=True
        )
    bounds = ui.load(queries.lifecycle_bounds, grain=grain)
    if bounds is None:
        st.info(f"No {grain} periods yet.")
        return
    first, last = bounds
    with st.sidebar:
        default_start = max(first, last - timedelta(days=DEFAULT_DAYS[grain]))
        picked = st.date_input(
            "Periods starting between",
            value=(default_start, last),
            min_value=first,
            max_value=last,
            key=f"lifecycle_dates_{grain}",
        )
    start, end = picked if isinstance(picked, tuple) and len(picked) == 2 else (default_start, last)
    frame = ui.load(queries.lifecycle, grain=grain, start=start, end=end)
    wide = ui.load(queries.lifecycle_periods, grain=grain, start=start, end=end)
    if not wide.empty:
        latest = wide.iloc[-1]
        tiles = st.columns(5)
        for column, status in zip(tiles, queries.LIFECYCLE_STATUSES, strict=False):
            column.metric(f"{status.capitalize()}, latest {grain}", f"{int(latest[status]):,}")
        tiles[4].metric(
            "Quick ratio",
            "n/a" if wide["quick_ratio"].isna().iloc[-1] else f"{latest['quick_ratio']:.2f}",
            help="(new + resurrecting) / dormant in the latest period: above 1 the active base grows.",
        )
    st.caption(
        "New: first activity in the period. Returning: active in this and the previous period. Resurrecting: "
        "active again after a gap. Dormant (below zero): active in the previous period, not in this one."
    )
    ui.chart(charts.lifecycle_bars(frame, grain=grain), wide, label="Lifecycle numbers", empty="No periods in range.")


def stickiness_section() -> None:
    """The distribution of active days per user in one week or month."""
    st.subheader("Stickiness: active days per user")
    if not ui.need("marts.stickiness", "marts.stickiness_periods", what="the stickiness chart"):
        return
    with st.sidebar:
        sticky_grain = st.radio("Stickiness period", ["week", "month"], key="stickiness_grain", horizontal=True)
        periods = ui.load(queries.stickiness_periods, grain=sticky_grain)
        labels = {
            row.period_start.date(): f"{row.period_start:%Y-%m-%d}" + ("" if row.is_complete else " (not over yet)")
            for row in periods.itertuples()
        }
        complete = [row.period_start.date() for row in periods.itertuples() if row.is_complete]
        options = list(labels)
        period = (
            st.selectbox(
                f"Which {sticky_grain}",
                options,
                index=options.index(complete[0]) if complete else 0,
                format_func=labels.get,
                key=f"stickiness_period_{sticky_grain}",
            )
            if options
            else None
        )
    if period is None:
        st.info("No periods yet.")
    else:
        distribution = ui.load(queries.stickiness, grain=sticky_grain, period_start=period)
        if not distribution.empty:
            summary = periods[periods["period_start"].dt.date == period].iloc[0]
            users, mean_days = int(summary["active_users"]), float(summary["avg_active_days"] or 0)
            tiles = st.columns(3)
            tiles[0].metric(f"Active users in the {sticky_grain}", f"{users:,}")
            tiles[1].metric("Average active days", f"{mean_days:.2f}")
            at_least_half = distribution[distribution["active_days"] >= (4 if sticky_grain == "week" else 15)]
            tiles[2].metric(
                "Active 4+ days" if sticky_grain == "week" else "Active 15+ days",
                f"{at_least_half['share_at_least'].iloc[0]:.1%}" if not at_least_half.empty else "n/a",
            )
            if not distribution["is_complete"].iloc[0]:
                st.caption(f"This {sticky_grain} has not ended at as_of: counts are still growing.")
        st.caption("Bars: share of the period's active users active on exactly N days. Line: on N days or more.")
        ui.chart(charts.stickiness_bars(distribution), distribution, label="Stickiness numbers")


lifecycle_section()
stickiness_section()
