"""HTTP event collector: Segment's Tracking API in, whole JSONL files into the landing folder out."""

from collector.app import create_app
from settings import CollectorSettings

__all__ = ["CollectorSettings", "create_app"]
