"""Paths: for each path of seed paths, the flow of users from (or to) its anchor event step by step as a Sankey,
the step matrix (the share of users at each event at each step), and the most common complete paths."""

import streamlit as st

from dashboard import charts, queries, ui
from ingestion.markup import plain_text

if ui.need("marts.path_steps", "marts.path_transitions", "marts.path_top_sequences", what="the paths page"):
    names = ui.load(queries.path_ids)
    with st.sidebar:
        st.subheader("Filters")
        path_id = st.selectbox("Path", names, key="path_chosen", format_func=lambda n: plain_text(n, 100))
    if path_id is None:
        st.info("No path has any users yet.")
    else:
        steps = ui.load(queries.path_steps, path_id=path_id)
        transitions = ui.load(queries.path_transitions, path_id=path_id)
        users = int(steps[steps["step_number"] == 0]["users"].sum())
        anchor = steps[steps["step_number"] == 0]["node"].iloc[0]
        backwards = steps["step_number"].min() < 0
        st.subheader(f"Path {plain_text(path_id, 60)}")
        st.markdown(
            f"**{users:,}** users did `{plain_text(anchor, 60)}`; the flow shows what they did "
            + ("before it, step by step, up to it." if backwards else "after it, step by step.")
        )
        st.caption(
            "Each column is a step from the anchor; a node's height is its users, a band's width the users who went "
            "that way. (other) gathers the events beyond the step's most common ones; "
            + ("(start): no event that far before." if backwards else "(end): the path had ended.")
        )
        ui.chart(charts.path_flow(steps, transitions), transitions, label="Flow numbers")
        st.subheader("Step matrix")
        matrix = steps.pivot_table(index="node", columns="step_number", values="share_of_users", fill_value=0.0)
        matrix = matrix.loc[matrix.max(axis=1).sort_values(ascending=False).index]
        st.dataframe(matrix.style.format("{:.1%}"), width="stretch", key="path_matrix")
        st.subheader("Most common complete paths")
        sequences = ui.load(queries.path_top_sequences, path_id=path_id)
        st.dataframe(
            sequences.assign(share_of_users=sequences["share_of_users"].map("{:.1%}".format)),
            hide_index=True,
            width="stretch",
            key="path_sequences",
        )
