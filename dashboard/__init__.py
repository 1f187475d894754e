"""Streamlit dashboard for product and marketing teams; reads only the serving copy ($DATA_DIR/serving.duckdb).

Start it with `streamlit run dashboard/app.py` (`make dashboard`). Query logic lives in dashboard.queries and the
charts in dashboard.charts, both free of Streamlit; dashboard/views/ holds the thin pages.
"""
