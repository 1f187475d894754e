"""The registry of every store the product keeps (files under DATA_DIR, DuckDB tables): owner, personal data,
and how an erasure would reach it. Plain Python: no dagster or streamlit import."""

from stores.registry import (
    HAND_TABLES,
    PATH_STORES,
    PathStore,
    TableStore,
    all_stores,
    dbt_table_stores,
    store_for_path,
    table_stores,
    unregistered_paths,
    unregistered_tables,
)

__all__ = [
    "HAND_TABLES",
    "PATH_STORES",
    "PathStore",
    "TableStore",
    "all_stores",
    "dbt_table_stores",
    "store_for_path",
    "table_stores",
    "unregistered_paths",
    "unregistered_tables",
]
