"""Segments: RFM segments and ML clusters with sizes and profiles; users per engagement band; the live segments' sizes
from Redis (the live path), seconds old."""

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui, wording

PROFILE_COLUMNS = {
    "rfm_segment": "segment",
    "users": "users",
    "share_of_users": "share",
    "avg_recency_score": "recency score",
    "avg_frequency_score": "frequency score",
    "avg_monetary_score": "monetary score",
    "avg_days_since_active": "days since active",
    "avg_active_days_90d": "active days (90 d)",
    "avg_revenue_365d": "revenue (365 d)",
    "avg_engagement_score": "engagement score",
}
LIVE_COLUMNS = {  # in this order: the counts first, the description (long) last
    "name": "segment",
    "members": "members now",
    "entered_1h": "entered (1 h)",
    "exited_1h": "exited (1 h)",
    "entered_24h": "entered (24 h)",
    "exited_24h": "exited (24 h)",
    "description": "description",
}

has_segments = ui.need("marts.user_segments", what="the RFM segments and engagement bands")
if has_segments:
    stages_all = ui.load(queries.lifecycle_stages)
    with st.sidebar:
        st.subheader("Filters")
        stages = st.multiselect(
            "Lifecycle stage",
            stages_all,
            default=stages_all,
            key="segments_stages",
            help="new: first active in the last 7 days; active: active in the last 7 days; at_risk: last active "
            "8-30 days ago; lapsed: not active in 30 days.",
        )
        high_frequency = st.toggle("Only high-frequency users (5+ sessions in 7 days)", key="segments_high_frequency")
    if not stages:
        st.info("Pick at least one lifecycle stage.")
    else:
        segments = ui.load(queries.rfm_segments, stages=tuple(stages), high_frequency_only=high_frequency)
        st.subheader("RFM segments")
        st.caption(
            "Recency, frequency and monetary scores from 1 to 5 (5 = most recent, most active days in 90 days, most "
            "revenue in 365 days), named by seed rfm_segments."
        )
        left, right = st.columns([2, 3])
        with left:
            if segments.empty:
                st.info("No users match the filters.")
            else:
                st.altair_chart(charts.bars(segments, "rfm_segment", "users", title="users"), width="stretch")
        with right:
            st.dataframe(
                segments.rename(columns=PROFILE_COLUMNS),
                hide_index=True,
                width="stretch",
                key="segments_profile",
                column_config={"share": st.column_config.NumberColumn(format="percent")},
            )

st.subheader("Clusters")
hide_low_data = st.toggle(
    "Leave out users with too little data",
    key="segments_hide_low_data",
    help="Every user is placed in a cluster; one whose cluster rests on fewer than ML_CLUSTER_LOW_DATA_EVENTS "
    "actions (10 by default) is flagged as too little data. Its placement is a guess: its confidence is low.",
)
has_assignments = "ml.user_clusters" in ui.tables()
sizes = ui.load(queries.cluster_sizes, with_low_data=not hide_low_data) if has_assignments else None
if "marts.cluster_profiles" not in ui.tables() and sizes is not None:
    # the model has clustered users but the profiles mart is not published yet: sizes only
    if not sizes.empty:
        st.caption(
            "Profiles appear once `marts.cluster_profiles` is published. " + ui.how_to_make(["marts.cluster_profiles"])
        )
        ui.chart(charts.bars(sizes, "cluster_name", "users", title="users"), sizes, label="Cluster sizes")
    else:
        ui.need("ml.user_clusters", what="the clusters")
elif ui.need("marts.cluster_profiles", what="the clusters"):
    profiles = ui.load(queries.cluster_profiles)
    index = ui.load(queries.cluster_feature_index) if "marts.cluster_feature_index" in ui.tables() else None
    left, right = st.columns([2, 3])
    with left:
        bars = sizes if sizes is not None else profiles[["cluster_id", "cluster_name", "users", "share_of_users"]]
        ui.chart(
            charts.bars(bars, "cluster_name", "users", title="users"),
            bars,
            label="Cluster sizes",
            empty="No user has enough data for a confident cluster yet.",
        )
        st.caption(
            "Confidence: 1 - distance to the nearest cluster / distance to the second nearest (0: between two "
            "clusters, 1: deep inside one)."
        )
    with right:
        if index is not None and not index.empty:
            st.caption(
                "Each cluster's average feature value (in the cell) against all users' average (colour: 2x "
                "is twice the average, 0.5x half)."
            )
            st.altair_chart(charts.cluster_heatmap(index), width="stretch")
        else:
            st.info(
                "No feature profile to compare the clusters on yet: " + ui.how_to_make(["marts.cluster_feature_index"])
            )
    with st.expander("Cluster profiles"):
        st.dataframe(
            profiles,
            hide_index=True,
            width="stretch",
            key="segments_clusters",
            column_config={
                "share_of_users": st.column_config.NumberColumn(format="percent"),
                "low_data_share": st.column_config.NumberColumn(format="percent"),
            },
        )

if has_segments and stages and ui.need("marts.engagement_bands", what="the engagement bands"):
    st.subheader("Engagement bands")
    bands = ui.load(queries.engagement_bands, stages=tuple(stages))
    st.caption(
        "Engagement score: weighted key actions in the last 28 days (an order counts 10, a feature use 3, a product "
        "added 2, a view or search 1, a page or screen view 0.5; seed engagement_weights), in the bands of seed "
        "engagement_band_thresholds."
    )
    ui.chart(charts.bars(bands, "band", "users", title="users", sort=list(bands["band"])), bands, label="Band numbers")


def live_segments() -> None:
    """The live segments of the live path (LIVE_DEFINITIONS_FILE): members now, entries and exits in the last hour
    and day, read from Redis; a note saying how to start the live path when no Redis answers."""
    st.subheader("Live segments")
    sizes, tone, note = ui.live_segment_sizes()
    if sizes is None:
        (st.warning if tone == "warning" else st.info)(note)
        return
    st.caption(wording.live_segments_caption(sizes, ui.LIVE_CACHE_SECONDS))
    if not sizes.segments:
        st.info("No live segment is defined: add one to live/definitions.yml (or LIVE_DEFINITIONS_FILE); docs/live.md.")
        return
    live = pd.DataFrame(sizes.rows())[list(LIVE_COLUMNS)]
    if not live["description"].astype(bool).any():
        live = live.drop(columns="description")
    left, right = st.columns([1, 2])
    with left:
        st.altair_chart(charts.bars(live, "name", "members", title="members now"), width="stretch")
    with right:
        st.dataframe(live.rename(columns=LIVE_COLUMNS), hide_index=True, width="stretch", key="segments_live")
    partial = wording.live_partial_sentence(sizes)
    if partial:
        st.caption(partial)


live_segments()
