"""The analysts' side: a published copy of the marts and its Parquet exports, swapped in together and durably (a
version folder under $DATA_DIR/published and one symlink rename), and a SQL shell.

Plain Python (no dagster import); the Dagster publish asset and `make sql` call it.
"""

from serving.publish import PublishResult, publish

__all__ = ["PublishResult", "publish"]
