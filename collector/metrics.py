"""Prometheus metrics of one collector app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorMetrics:
    """Requests, events accepted / rejected / dropped / suppressed, bytes, spool lag and rotations."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "collector_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.requests_rejected = Counter(
            "collector_requests_rejected",
            "Requests refused as a whole (auth, size, JSON, encoding) by reason",
            ["reason"],
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "collector_events_accepted",
            "Events acknowledged to the client, by source and type",
            ["source", "type"],
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "collector_events_rejected", "Events refused one by one, by reason", ["reason"], registry=self.registry
        )
        self.events_dropped = Counter(
            "collector_events_dropped_by_contract",
            "Accepted events of types the landing contract has no place for (group, alias): not spooled",
            ["type"],
            registry=self.registry,
        )
        self.events_suppressed = Counter(
            "collector_events_suppressed",
            "Accepted events of erased users (on the suppression list): answered like the others, not spooled",
            registry=self.registry,
        )
        self.request_bytes = Counter(
            "collector_request_bytes", "Request body bytes as received (compressed when gzip)", registry=self.registry
        )
        self.spooled_bytes = Counter("collector_spooled_bytes", "Bytes appended to the spool", registry=self.registry)
        self.spooled_events = Counter(
            "collector_spooled_events", "Events appended to the spool", registry=self.registry
        )
        self.rotations = Counter(
            "collector_rotations", "Spool files moved into the landing folder", registry=self.registry
        )
        self.recovered_files = Counter(
            "collector_recovered_files",
            "Spool files left by an earlier process and landed at start",
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "collector_request_seconds",
            "Time from request start to answer, for the event endpoints",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.spool_lag = Gauge(
            "collector_spool_lag_seconds", "Age of the oldest event still in the spool file", registry=self.registry
        )
        self.spool_events = Gauge(
            "collector_spool_events", "Events in the open spool file, not yet in landing", registry=self.registry
        )

    def watch_spool(self, lag: Callable[[], float], events: Callable[[], float]) -> None:
        """Read the spool's gauges at scrape time."""
        self.spool_lag.set_function(lag)
        self.spool_events.set_function(events)
