"""Funnels: for each funnel of seed funnels, its steps as bars with the conversion from step 1 and from the previous
step, the time each step took, the split by the funnel's breakdown, the trend by cohort, and the users who dropped
off at a step as a CSV for the activation team."""

import streamlit as st

from dashboard import charts, queries, ui, wording
from ingestion.markup import md_escape, plain_text

GRAIN_NAMES = {"all": "whole history", "month": "months", "week": "weeks", "day": "days"}


def time_table(steps):
    """Time to convert between steps, in words."""
    later = steps[steps["step_number"] > 1].sort_values("step_number")
    return later.assign(
        step=later["step_number"].astype(str) + ". " + later["step_name"],
        **{
            "median from previous": later["median_seconds_from_previous"].map(wording.duration),
            "25% took less than": later["p25_seconds_from_previous"].map(wording.duration),
            "75% took less than": later["p75_seconds_from_previous"].map(wording.duration),
            "90% took less than": later["p90_seconds_from_previous"].map(wording.duration),
            "median from step 1": later["median_seconds_from_entry"].map(wording.duration),
        },
    )[["step", "median from previous", "25% took less than", "75% took less than", "90% took less than",
       "median from step 1"]]  # fmt: skip


if ui.need("marts.funnel_conversion", what="the funnels page"):
    names = ui.load(queries.funnel_ids)
    with st.sidebar:
        st.subheader("Filters")
        funnel_id = st.selectbox("Funnel", names, key="funnel_chosen", format_func=lambda n: plain_text(n, 100))
        grain = st.selectbox("Users who entered in", list(GRAIN_NAMES), key="funnel_grain", format_func=GRAIN_NAMES.get)
        start = end = None
        if grain != "all":
            bounds = ui.load(queries.funnel_cohort_bounds, funnel_id=funnel_id, grain=grain)
            if bounds:
                start, end = st.slider(
                    "Cohorts", min_value=bounds[0], max_value=bounds[1], value=bounds, key=f"funnel_range_{grain}"
                )
    if funnel_id is None:
        st.info("No funnel has any users yet.")
    else:
        steps = ui.load(queries.funnel_steps, funnel_id=funnel_id, grain=grain, start=start, end=end)
        everyone = steps[steps["breakdown_value"] == "(all)"]
        whole = ui.load(queries.funnel_steps, funnel_id=funnel_id)
        first = whole.iloc[0] if not whole.empty else None
        if first is not None:
            meta = ui.load(queries.funnel_settings, funnel_id=funnel_id)
            st.subheader(f"Funnel {md_escape(funnel_id, wording.NAME_CHARS)}")
            if meta["description"]:
                st.caption(md_escape(meta["description"], 300))
            window = f"{meta['conversion_window']} {meta['window_unit']}{'s' if meta['conversion_window'] != 1 else ''}"
            st.markdown(wording.funnel_sentence(everyone, window))
            st.caption(
                f"Ordering: {meta['ordering']} ({wording.ORDERING_WORDS.get(meta['ordering'], '')}); each user counts "
                "once per cohort, at its first entry (docs/funnels.md)."
            )
            dropoff = wording.biggest_dropoff_sentence(everyone)
            if dropoff:
                st.markdown(dropoff)
            ui.chart(charts.funnel_bars(everyone), everyone, label="Funnel numbers", empty="No users in these cohorts.")
            if not everyone.empty and not bool(everyone["is_complete"].all()):
                st.warning(
                    "Some users in these cohorts entered too recently for their conversion window to have ended: "
                    "their steps may still come."
                )
            if grain == "all":
                st.subheader("Time to convert")
                st.dataframe(time_table(everyone), hide_index=True, width="stretch", key="funnel_times")
            else:
                st.caption("Times to convert are for the whole history (they do not add up across cohorts).")
                st.dataframe(time_table(whole[whole["breakdown_value"] == "(all)"]), hide_index=True, width="stretch")
            split = steps[steps["breakdown_value"] != "(all)"]
            if not split.empty:
                st.subheader(f"By {md_escape(split['breakdown'].iloc[0], wording.NAME_CHARS)}")
                ui.chart(charts.funnel_breakdown_bars(split), split, label="Breakdown numbers")
            if grain != "all":
                st.subheader("Conversion by cohort")
                trend = ui.load(queries.funnel_trend, funnel_id=funnel_id, grain=grain)
                shown = trend[(trend["cohort_start"] >= start) & (trend["cohort_start"] <= end)] if start else trend
                ui.chart(charts.funnel_trend(shown), shown, label="Cohort numbers")
            st.subheader("Users who dropped off")
            last_step = int(everyone["step_number"].max()) if not everyone.empty else 1
            names_by_step = dict(zip(everyone["step_number"], everyone["step_name"], strict=True))
            after = st.selectbox(
                "Reached step, then stopped",
                list(range(1, last_step)),
                key="funnel_dropped_after",
                format_func=lambda n: f"{n}. {plain_text(names_by_step.get(n, ''), 80)}",
            )
            if after is not None:
                dropped = ui.load(queries.funnel_dropoffs, funnel_id=funnel_id, after_step=after)
                st.markdown(
                    f"**{len(dropped):,}** users reached step {after} and not step {after + 1} within the window "
                    f"(audience `funnel_{plain_text(funnel_id, 60)}_dropped_after_step_{after}`, which the "
                    "activation layer sends)."
                )
                st.download_button(
                    "Download these users (CSV)",
                    dropped.to_csv(index=False).encode(),
                    file_name=f"{plain_text(funnel_id, 60)}_dropped_after_step_{after}.csv",
                    mime="text/csv",
                    key="funnel_dropoffs_csv",
                    disabled=dropped.empty,
                )
