"""Retention: cohort heatmap, per-cohort and average curves, classic or unbounded, optionally by channel or trait."""

import streamlit as st

from dashboard import charts, queries, ui
from ingestion.markup import md_escape, plain_text

DEFAULT_COHORTS = {"day": 30, "week": 12, "month": 6}
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 6}
BREAKDOWNS = {"none": None, "channel": "first_touch_channel", "country": "country", "plan": "plan"}

if ui.need("marts.cohort_retention", "marts.retention_curve_cells", what="the retention page"):
    with st.sidebar:
        st.subheader("Filters")
        grain = st.segmented_control(
            "Cohort grain", list(queries.GRAINS), default="week", key="retention_grain", required=True
        )
        mode = st.radio(
            "Retention",
            ["classic", "unbounded"],
            format_func={"classic": "Classic: active in period k", "unbounded": "Unbounded: active in k or later"}.get,
            key="retention_mode",
        )
        starts = ui.load(queries.cohort_starts, grain=grain)
        breakdown_label = st.selectbox(
            "Break down by",
            list(BREAKDOWNS),
            key="retention_breakdown",
            help="First-touch channel (from the first event's campaign), or the latest country or plan trait.",
        )
    dimension = BREAKDOWNS[breakdown_label]
    if dimension and grain == "day":
        st.info("Breakdowns by channel or trait exist for weekly and monthly cohorts; showing all users.")
        dimension = None
    if dimension and "marts.cohort_retention_by_dimension" not in ui.tables():
        ui.need("marts.cohort_retention_by_dimension", "marts.retention_curve_cells_by_dimension", what="the breakdown")
        dimension = None

    if not starts:
        st.info(f"No {grain} cohorts yet.")
    else:
        with st.sidebar:
            default_first = starts[max(0, len(starts) - DEFAULT_COHORTS[grain])]
            if len(starts) > 1:
                first_cohort, last_cohort = st.select_slider(
                    "Cohorts",
                    options=starts,
                    value=(default_first, starts[-1]),
                    key=f"retention_cohorts_{grain}",
                    format_func=lambda d: f"{d:%Y-%m-%d}",
                )
            else:
                first_cohort = last_cohort = starts[0]
            longest = len(starts) - 1
            max_period = (
                st.slider(
                    "Periods shown",
                    min_value=1,
                    max_value=longest,
                    value=min(longest, DEFAULT_PERIODS[grain]),
                    key=f"retention_periods_{grain}",
                )
                if longest > 1
                else longest
            )
            values: tuple[str, ...] = ()
            if dimension:
                options = ui.load(queries.dimension_values, dimension=dimension)
                chosen = st.multiselect(
                    f"{breakdown_label.capitalize()} values",
                    options,
                    default=options,
                    key=f"retention_values_{dimension}",
                    format_func=lambda value: plain_text(value, 100),
                )
                values = tuple(chosen)
        if dimension and not values:
            st.info(f"Pick at least one {breakdown_label} value.")
        else:
            rate = "retention_rate" if mode == "classic" else "retention_rate_unbounded"
            scope = dict(grain=grain, first_cohort=first_cohort, last_cohort=last_cohort, max_period=max_period)
            filters = dict(dimension=dimension, values=values) if dimension else {}
            matrix = ui.load(queries.retention_matrix, **scope, **filters)
            average = ui.load(queries.retention_average, **scope, **filters)

            one = average[average["period_number"] == 1]
            tiles = st.columns(4)
            tiles[0].metric("Cohorts", f"{matrix['cohort_start'].nunique():,}")
            tiles[1].metric(
                "Users in these cohorts", f"{int(matrix[matrix['period_number'] == 0]['cohort_size'].sum()):,}"
            )
            tiles[2].metric(
                f"Average retention, {grain} 1",
                "n/a" if one.empty else f"{one[rate].iloc[0]:.1%}",
                help="Weighted over complete cohorts only: retained users / users of cohorts that finished the period.",
            )
            tiles[3].metric("Retention", "classic" if mode == "classic" else "unbounded")
            scope_text = (
                f" for {breakdown_label} {', '.join(md_escape(value, 60) for value in values)}"
                if dimension and len(values) < 8
                else f" for {len(values)} {breakdown_label} values"
                if dimension
                else ""
            )

            st.subheader(f"Cohort heatmap{scope_text}")
            st.caption(
                "Share of each cohort active in each period. Grey dashed cells with `~` are periods that have not "
                "ended yet at as_of: partial counts, not zeros."
            )
            ui.chart(
                charts.retention_heatmap(matrix, rate, grain=grain),
                matrix,
                label="Heatmap numbers",
                empty="No cohorts in this range.",
            )

            st.subheader("Retention curves")
            st.caption(
                "Thin lines: each cohort over its complete periods. Black line: the average, weighted over complete "
                "cohorts only (total retained / total users who completed the period)."
            )
            ui.chart(charts.retention_curves(matrix, average, rate, grain=grain), average, label="Average curve")

            if dimension:
                by_value = ui.load(queries.retention_average, **scope, dimension=dimension, values=values, split=True)
                st.subheader(f"By {breakdown_label}")
                ui.chart(
                    charts.segment_curves(by_value, rate, grain=grain, title=breakdown_label),
                    by_value,
                    label=f"Curves by {breakdown_label}",
                )
