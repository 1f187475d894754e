"""The analysts' side: a published copy of the marts, swapped in atomically, Parquet exports and a SQL shell.

Plain Python (no dagster import); the Dagster publish asset and `make sql` call it.
"""

from serving.publish import PublishResult, publish

__all__ = ["PublishResult", "publish"]
