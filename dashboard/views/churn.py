"""Churn: risk-tier sizes, the score distribution, the champion model and its holdout metrics, at-risk users."""

import streamlit as st

from dashboard import charts, queries, ui
from ingestion.markup import md_escape

SHOWN_USERS = 1000  # rows listed on the page; the download has every user that matches

if ui.need("ml.churn_scores", what="the churn page"):
    has_segments = "marts.user_segments" in ui.tables()
    with st.sidebar:
        st.subheader("Filters")
        segment_names = ui.load(queries.rfm_segment_names) if has_segments else []
        segments = tuple(
            st.multiselect(
                "RFM segment",
                segment_names,
                default=[],
                key="churn_segments",
                placeholder="all segments",
                disabled=not has_segments,
            )
        )
    tiers = ui.load(queries.risk_tiers, segments=segments)
    tier_names = list(tiers["risk_tier"])  # lowest risk first

    st.subheader("Risk tiers")
    if tiers.empty:
        st.info("No scored users in these segments.")
    else:
        tiles = st.columns(len(tier_names) + 1)
        tiles[0].metric("Scored users", f"{int(tiers['users'].sum()):,}")
        for column, row in zip(tiles[1:], tiers.itertuples(), strict=True):
            column.metric(
                f"{row.risk_tier} risk",
                f"{row.users:,}",
                help=f"{row.share_of_users:.1%} of scored users, "
                f"probability {row.min_probability:.0%} to {row.max_probability:.0%}",
            )
        left, right = st.columns(2)
        with left:
            ui.chart(charts.bars(tiers, "risk_tier", "users", title="users", sort=tier_names), tiers, label="Tiers")
        with right:
            histogram = ui.load(queries.score_histogram, segments=segments)
            ui.chart(charts.score_histogram(histogram, tier_names), histogram, label="Score distribution")

    st.subheader("Model")
    versions = ui.load(queries.churn_model_versions)
    if versions:
        st.caption(f"Scores written by model version {md_escape(', '.join(versions))}.")
    if ui.need("ml.model_metrics", what="the model's holdout metrics"):
        metrics = ui.load(queries.champion_metrics)
        churn_models = metrics[metrics["model_name"].str.contains("churn", case=False)]
        if not churn_models.empty:  # ml.model_metrics may hold other models' champions (clustering) too
            metrics = churn_models
        if metrics.empty:
            st.info("No champion model yet: the churn model registers one after its first training (`make run`).")
        else:
            for model_name, rows in metrics.groupby("model_name", sort=True):
                first = rows.iloc[0]
                st.markdown(
                    f"Champion **{md_escape(model_name)}** version **{md_escape(first['model_version'])}**, trained "
                    f"{first['trained_at']:%Y-%m-%d %H:%M} UTC on data up to {first['as_of']:%Y-%m-%d}."
                )
                tiles = st.columns(min(len(rows), 6))
                for column, row in zip(tiles, rows.head(6).itertuples(), strict=False):
                    column.metric(
                        f"holdout {row.metric}",
                        f"{row.value:,.0f}"
                        if abs(row.value) >= 10 and float(row.value).is_integer()
                        else f"{row.value:.3f}",
                    )
            with st.expander("All champion metrics"):
                st.dataframe(metrics, hide_index=True, width="stretch", key="churn_metrics")

    st.subheader("At-risk users")
    if tier_names:
        default_tiers = [tier_names[-1]]
        left, right = st.columns([2, 1])
        chosen = left.multiselect("Risk tiers", tier_names, default=default_tiers, key="churn_tiers")
        min_probability = right.slider("Churn probability at least", 0.0, 1.0, 0.0, 0.05, key="churn_min_probability")
        users = ui.load(queries.at_risk_users, tiers=tuple(chosen), min_probability=min_probability, segments=segments)
        shown = users.head(SHOWN_USERS)
        more = f"; the riskiest {SHOWN_USERS:,} are listed, the CSV has them all" if len(users) > SHOWN_USERS else ""
        st.caption(f"{len(users):,} users, riskiest first{more}.")
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            key="churn_users",
            column_config={
                "churn_probability": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent")
            },
        )
        st.download_button(
            "Download CSV",
            users.to_csv(index=False).encode(),
            file_name="at_risk_users.csv",
            mime="text/csv",
            icon=":material/download:",
            key="churn_download",
            on_click="ignore",
        )
