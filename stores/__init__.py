"""Every store the product keeps: `schema` (connect() and the DDL of the tables dbt does not build), `files` (durable
writes under DATA_DIR) and `registry` (every file, folder and table with owner, personal data and how an erasure
would reach it). Plain Python: no dagster or streamlit import.

The registry's names are importable from here too; they load on first use, so `stores.files` and `stores.schema`
stay cheap to import for the collector and serving (which the registry itself reads).
"""

from typing import Any

__all__ = [
    "HAND_TABLES",
    "KEY_STORES",
    "PATH_STORES",
    "KeyStore",
    "PathStore",
    "TableStore",
    "all_stores",
    "dbt_table_stores",
    "store_for_path",
    "table_stores",
    "unregistered_keys",
    "unregistered_paths",
    "unregistered_tables",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from stores import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'stores' has no attribute {name!r}")
