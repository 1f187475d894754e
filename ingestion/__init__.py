"""Landing folder -> raw.events: parse, validate, deduplicate, reject with reasons, record every file.

Plain Python (no dagster import): Dagster assets and the `ingest-landing` CLI both call `ingest_landing`.
"""

from ingestion.loader import FileResult, IngestSummary, ingest_file, ingest_landing
from settings import IngestSettings

__all__ = ["FileResult", "IngestSettings", "IngestSummary", "ingest_file", "ingest_landing"]
