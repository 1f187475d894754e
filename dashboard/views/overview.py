"""Overview: active users, stickiness, new users, orders, revenue and conversion as trends, KPI alerts marked."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui

if ui.need("marts.daily_kpis", "marts.kpi_periods", what="the overview"):
    first, last = ui.load(queries.kpi_date_bounds)
    with st.sidebar:
        st.subheader("Filters")
        default_start = max(first, last - timedelta(days=89))
        picked = st.date_input(
            "Date range", value=(default_start, last), min_value=first, max_value=last, key="overview_dates"
        )
        grain = st.segmented_control(
            "Grain", ["day", "week", "month"], default="day", key="overview_grain", required=True
        )
    start, end = picked if isinstance(picked, tuple) and len(picked) == 2 else (default_start, last)
    trend = ui.load(queries.kpi_trend, start=start, end=end, grain=grain)
    alerts = (
        ui.load(queries.kpi_alerts, start=start, end=end)
        if "marts.kpi_alerts" in ui.tables()
        else pd.DataFrame(columns=["activity_date", "kpi", "value", "expected", "band_low", "band_high", "direction"])
    )

    if trend.empty:
        st.info("No days in this range.")
    else:
        latest = trend.iloc[-1]
        previous = trend.iloc[-2] if len(trend) > 1 else None
        label = {"day": "day", "week": "week", "month": "month"}[grain]
        st.markdown(
            f"**Latest {label} in range: {latest['period_start']:%Y-%m-%d}** (change against the {label} before)"
        )
        tiles = st.columns(6)
        for column, (key, name, fmt) in zip(
            tiles,
            [
                ("dau", "DAU" if grain == "day" else "Avg DAU", "{:,.0f}"),
                ("mau", "MAU", "{:,.0f}"),
                ("stickiness", "Stickiness (DAU/MAU)", "{:.1%}"),
                ("new_users", "New users", "{:,.0f}"),
                ("revenue", "Revenue", "{:,.0f}"),
                ("conversion_rate", "Conversion", "{:.1%}"),
            ],
            strict=True,
        ):
            value = latest[key]
            delta = None
            if previous is not None and pd.notna(value) and pd.notna(previous[key]):
                change = value - previous[key]
                delta = fmt.format(change) if "%" not in fmt else f"{change * 100:+.1f} pts"
            column.metric(name, "n/a" if pd.isna(value) else fmt.format(value), delta=delta)

        if grain != "day":
            st.caption(
                "Rolled up: DAU is the daily average, WAU and MAU their value on the period's last day, stickiness "
                "the average daily DAU/MAU, conversion the share of active user-days with an order; the first and "
                "last periods may be partial (column `days`)."
            )
        if not alerts.empty:
            st.warning(
                f"{len(alerts)} KPI alert{'s' if len(alerts) != 1 else ''} in this range, marked with red rings "
                "(latest first): "
                + "; ".join(
                    queries.alert_sentence(
                        r.kpi, r.activity_date, r.value, r.expected, r.band_low, r.band_high, r.direction
                    )
                    for r in alerts.sort_values("activity_date", ascending=False).head(5).itertuples()
                )
                + ("…" if len(alerts) > 5 else ""),
                icon=":material/notifications:",
            )
        panels = [
            ({"dau": "DAU", "wau": "WAU", "mau": "MAU"}, "Active users", ",.0f"),
            ({"stickiness": "DAU/MAU"}, "Stickiness", ".0%"),
            ({"new_users": "new users"}, "New users", ",.0f"),
            ({"orders": "orders"}, "Orders", ",.0f"),
            ({"revenue": "revenue"}, "Revenue (orders minus refunds)", ",.0f"),
            ({"conversion_rate": "conversion"}, "Conversion (active users who ordered)", ".1%"),
        ]
        left, right = st.columns(2)
        for index, (series, title, y_format) in enumerate(panels):
            with left if index % 2 == 0 else right:
                st.altair_chart(charts.trend(trend, series, alerts, title=title, y_format=y_format), width="stretch")
        with st.expander("Numbers"):
            st.dataframe(trend, hide_index=True, width="stretch", key="overview_numbers")
        if not alerts.empty:
            with st.expander("KPI alerts"):
                st.dataframe(alerts, hide_index=True, width="stretch", key="overview_alerts")
        elif "marts.kpi_alerts" not in ui.tables():
            st.caption(
                "KPI alerts will be marked here once `marts.kpi_alerts` is published. "
                + ui.how_to_make(["marts.kpi_alerts"])
            )
