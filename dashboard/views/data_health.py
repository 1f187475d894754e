"""Data health: freshness, rows loaded and rejected per landing file with reasons, the latest batch gate results,
and the client values the marts flagged (marts.data_health_flags)."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from ingestion.markup import md_escape, plain_text

CHARTED_FILES = 30  # newest first; the table lists every file

st.subheader("Freshness")
if ui.need("meta.publish", what="freshness"):
    info = ui.load(queries.publish_info) or {}
    now = datetime.now(UTC).replace(tzinfo=None)
    tiles = st.columns(4)
    moments = [
        ("Last publish", info.get("published_at"), "When this serving copy was written."),
        ("Last file loaded", info.get("latest_load_at"), "When ingestion last loaded a landing file."),
        ("Latest event", info.get("latest_event_at"), "The newest event timestamp in the warehouse."),
        ("Data as of", info.get("as_of"), "The instant the marts are computed at."),
    ]
    for column, (label, moment, help_text) in zip(tiles, moments, strict=True):
        column.metric(
            label,
            "never" if moment is None else f"{queries.age_in_words(moment, now)} ago",
            help=help_text,
        )
        if moment is not None:
            column.caption(f"{moment:%Y-%m-%d %H:%M:%S} UTC")
    if info.get("latest_load_at") and info.get("published_at"):
        lag = (info["published_at"] - info["latest_load_at"]).total_seconds()
        st.caption(f"Landing to published: {lag:,.0f} s for the last load.")

st.subheader("Gate: latest batches")
if ui.need("ops.batches", what="the gate results"):
    batches = ui.load(queries.batches)
    latest = batches.iloc[0]
    when = f"{latest['started_at']:%Y-%m-%d %H:%M} UTC"
    if latest["gate_status"] == "passed":
        st.success(
            f"The latest batch ({latest['files']} files, {latest['rows_loaded']:,} rows loaded, {when}) "
            "passed the gate."
        )
    else:
        st.error(
            f"The latest batch ({latest['files']} files, {when}) is **{md_escape(latest['gate_status'])}**: "
            f"{md_escape(latest['gate_detail'], 500) if latest['gate_detail'] else 'no reason recorded'}. Its rows "
            "are kept out of the marts until released."
        )
    quarantined = batches[batches["gate_status"] != "passed"]
    if len(quarantined) and latest["gate_status"] == "passed":
        st.warning(f"{len(quarantined)} earlier batch(es) in this list did not pass; see the table.")
    st.dataframe(
        batches[["started_at", "gate_status", "files", "rows_in", "rows_loaded", "gate_detail", "batch_id"]],
        hide_index=True,
        width="stretch",
        key="health_batches",
    )

st.subheader("Landing files")
if ui.need("ops.load_manifest", what="the file list"):
    with st.sidebar:
        st.subheader("Filters")
        only_rejects = st.toggle("Only files with rejected rows", key="health_only_rejects")
    manifest = ui.load(queries.load_manifest, only_with_rejects=only_rejects)
    if not manifest.empty:
        totals = manifest[["rows_in", "rows_loaded", "rows_duplicate", "rows_rejected", "rows_erased"]].sum()
        tiles = st.columns(6)
        tiles[0].metric("Files", f"{len(manifest):,}")
        tiles[1].metric("Rows in", f"{int(totals['rows_in']):,}")
        tiles[2].metric("Loaded", f"{int(totals['rows_loaded']):,}")
        tiles[3].metric("Duplicates", f"{int(totals['rows_duplicate']):,}")
        tiles[4].metric(
            "Rejected",
            f"{int(totals['rows_rejected']):,}",
            help="Rows that broke the input contract; each is kept with its reason in raw.events_rejected.",
        )
        tiles[5].metric(
            "Erased",
            f"{int(totals['rows_erased']):,}",
            help="Rows of erased users: removed from their file by an erasure, or dropped at load (suppressed).",
        )
        not_reconciled = manifest[~manifest["reconciles"]]
        if len(not_reconciled):
            st.error(
                f"{len(not_reconciled)} file(s) do not reconcile (rows in != loaded + duplicate + rejected + erased)."
            )
    if len(manifest) > CHARTED_FILES:
        st.caption(
            f"The chart shows the {CHARTED_FILES} files loaded last; the table below it has all {len(manifest):,}."
        )
    ui.chart(charts.file_rows(manifest.head(CHARTED_FILES)), manifest, label="Files", empty="No files match.")

st.subheader("Rejected rows by reason")
if ui.need("ops.rejects_by_file_reason", what="the rejected rows", allow_empty=True):
    files = ui.load(queries.rejects)
    file_names = sorted(files["source_file"].unique()) if not files.empty else []
    with st.sidebar:
        chosen = st.multiselect(
            "Files (rejects)", file_names, default=[], key="health_files", placeholder="all files",
            format_func=lambda name: plain_text(name, 100),
        )  # fmt: skip
    rows = ui.load(queries.rejects, files=tuple(chosen)) if chosen else files
    if rows.empty:
        st.success("No rejected rows." if not chosen else "No rejected rows in these files.")
    else:
        by_reason = ui.load(queries.rejects_by_reason, files=tuple(chosen))
        st.altair_chart(charts.bars(by_reason, "reason", "rejected_rows", title="rejected rows"), width="stretch")
        st.caption("Per file and reason, with the first rejected line as a sample:")
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            key="health_rejects",
            column_config={"sample_line": st.column_config.TextColumn(width="large")},
        )

st.subheader("Flagged client values")
if ui.need("marts.data_health_flags", what="the flagged client values", allow_empty=True):
    flags = ui.load(queries.data_health_flags)
    flagged = flags[flags["flagged"] > 0]
    st.caption(
        "Values clients send (variant names, experiment ids, revenue, traits, features) that the marts could not use "
        "as sent: never a failed run, but a flagged row or a fallback value, counted here per kind."
    )
    if flagged.empty:
        st.success("No flagged client values.")
    else:
        st.warning(
            "Flagged: "
            + "; ".join(f"{row.flag.replace('_', ' ')} {int(row.flagged):,}" for row in flagged.itertuples())
            + "."
        )
    st.dataframe(
        flags,
        hide_index=True,
        width="stretch",
        key="health_flags",
        column_config={"example": st.column_config.TextColumn(width="medium")},
    )
