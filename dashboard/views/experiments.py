"""Experiments: per experiment the decision with its rule, each metric's lift with its 95% and always-valid
intervals (CUPED and the multiple-testing correction stated), the variants' conversion with intervals, SRM in
words; unplanned variants and experiments (client-sent names the seed does not plan) are marked in words."""

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui, wording
from ingestion.markup import md_escape, plain_text

TONES = {"success": st.success, "warning": st.warning, "error": st.error}


def decision_section(decision: pd.DataFrame, metrics: pd.DataFrame, experiment_id: str) -> None:
    """The decision box, the metrics' chart and sentences, and the rules in an expander."""
    if decision.empty:
        st.warning("No decision: this experiment has no metrics in the experiment_metrics seed.")
        return
    tone, sentence = wording.decision_sentence(decision.iloc[0])
    TONES[tone](sentence)
    if not metrics.empty:
        ui.chart(charts.metric_forest(metrics), metrics, label=f"{plain_text(experiment_id, 60)}: metric numbers")
        for _, row in metrics.iterrows():
            st.markdown(wording.metric_sentence(row))
    with st.expander("How the decision is made"):
        rules = str(decision.iloc[0]["decision_rules"]).split("; ")
        st.markdown("\n".join(f"- {md_escape(rule.split('. ', 1)[-1], 400)}" for rule in rules))


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
        # the decision marts arrived later than experiment_results: an older serving copy has none
        decided = {"marts.experiment_decisions", "marts.experiment_metric_results"} <= ui.tables()
        decisions = ui.load(queries.experiment_decisions, experiments=tuple(chosen)) if decided else None
        metrics = ui.load(queries.experiment_metric_results, experiments=tuple(chosen)) if decided else None
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
            (st.success if srm_ok else st.error)(srm_text)
            if decided:
                decision_section(
                    decisions[decisions["experiment_id"] == experiment_id],
                    metrics[metrics["experiment_id"] == experiment_id],
                    experiment_id,
                )
            else:
                enough, power_text = wording.power_sentence(rows)
                (st.success if enough else st.warning)(power_text)
            setup_note, unplanned_note = wording.planned_experiment_sentence(rows), wording.unplanned_sentence(rows)
            if setup_note:
                st.warning(setup_note)
            if unplanned_note:
                st.warning(unplanned_note)
            st.markdown("**Conversion to the goal event by variant**")
            for _, row in rows[~rows["is_control"]].iterrows():
                control = rows[rows["is_control"]]
                st.markdown(wording.lift_sentence(row, control.iloc[0] if not control.empty else None))
            st.altair_chart(charts.variant_rates(rows), width="stretch")
            with st.expander(f"{md_escape(experiment_id, wording.NAME_CHARS)}: numbers"):
                st.dataframe(rows, hide_index=True, width="stretch", key=f"experiments_rows_{experiment_id}")
