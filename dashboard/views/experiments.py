"""Experiments: per experiment the variants' rates with intervals, a forest plot of lifts, SRM and power in words;
unplanned variants and experiments (client-sent names the seed does not plan) are marked in words."""

import streamlit as st

from dashboard import charts, queries, ui, wording
from ingestion.markup import md_escape, plain_text

if ui.need("marts.experiment_results", what="the experiments page"):
    names = ui.load(queries.experiment_ids)
    with st.sidebar:
        st.subheader("Filters")
        chosen = st.multiselect(
            "Experiments", names, default=names, key="experiments_chosen", format_func=lambda n: plain_text(n, 100)
        )
    if not chosen:
        st.info("Pick at least one experiment.")
    else:
        results = ui.load(queries.experiment_results, experiments=tuple(chosen))
        st.subheader("Lift against control")
        st.caption(
            "Each line is a variant's relative lift in conversion over its control with the 95% interval; the dashed "
            "line is no difference. Green: better, red: worse, grey: the interval includes zero."
        )
        if "is_planned_variant" in results.columns:  # unplanned variants are not compared: no lift to plot
            compared = results[~results["is_control"] & results["is_planned_variant"].ne(False)]
        else:
            compared = results[~results["is_control"]]
        ui.chart(
            charts.forest(compared),
            compared,
            label="Lift numbers",
            empty="These experiments have no variant besides control.",
        )
        for experiment_id, rows in results.groupby("experiment_id", sort=False):
            st.subheader(f"Experiment {md_escape(experiment_id, wording.NAME_CHARS)}")
            srm_ok, srm_text = wording.srm_sentence(rows)
            enough, power_text = wording.power_sentence(rows)
            (st.success if srm_ok else st.error)(srm_text)
            (st.success if enough else st.warning)(power_text)
            setup_note, unplanned_note = wording.planned_experiment_sentence(rows), wording.unplanned_sentence(rows)
            if setup_note:
                st.warning(setup_note)
            if unplanned_note:
                st.warning(unplanned_note)
            for _, row in rows[~rows["is_control"]].iterrows():
                control = rows[rows["is_control"]]
                st.markdown(wording.lift_sentence(row, control.iloc[0] if not control.empty else None))
            st.altair_chart(charts.variant_rates(rows), width="stretch")
            with st.expander(f"{md_escape(experiment_id, wording.NAME_CHARS)}: numbers"):
                st.dataframe(rows, hide_index=True, width="stretch", key=f"experiments_rows_{experiment_id}")
