"""The dashboard's entrypoint: `streamlit run dashboard/app.py`. A frame (freshness line) around seven pages."""

import sys
from pathlib import Path

# `streamlit run` puts only this file's folder on sys.path; the pages import the `dashboard` package from the
# project root, which an editable install made before dashboard/ existed does not map.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"
PAGES = [
    st.Page(VIEWS / "overview.py", title="Overview", icon=":material/monitoring:", url_path="overview", default=True),
    st.Page(VIEWS / "retention.py", title="Retention", icon=":material/grid_on:", url_path="retention"),
    st.Page(
        VIEWS / "lifecycle.py",
        title="Lifecycle & stickiness",
        icon=":material/stacked_bar_chart:",
        url_path="lifecycle",
    ),
    st.Page(VIEWS / "segments.py", title="Segments", icon=":material/groups:", url_path="segments"),
    st.Page(VIEWS / "churn.py", title="Churn", icon=":material/trending_down:", url_path="churn"),
    st.Page(VIEWS / "funnels.py", title="Funnels", icon=":material/filter_alt:", url_path="funnels"),
    st.Page(VIEWS / "paths.py", title="Paths", icon=":material/route:", url_path="paths"),
    st.Page(VIEWS / "experiments.py", title="Experiments", icon=":material/science:", url_path="experiments"),
    st.Page(VIEWS / "data_health.py", title="Data health", icon=":material/health_and_safety:", url_path="data_health"),
]

st.set_page_config(page_title="Engagement dashboard", page_icon=":material/insights:", layout="wide")
page = st.navigation(PAGES)
st.title(page.title)
ui.freshness_line()
page.run()
