"""End to end: the real Segment and RudderStack SDKs into a `python -m collector` process, then ingestion.

Also a kill -9 in the middle of a stream: every acknowledged event reaches raw.events, none twice, no torn file.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from ingestion import IngestSettings
from ingestion.loader import ingest_landing
from orchestration.defs.refresh.automation import new_landing_files
from tests.collector_server import ProcessServer, landed_lines
from tests.conftest import query

pytestmark = pytest.mark.slow

WRITE_KEYS = "seg-key:web,rudder-key:backend"
TRACKS, IDENTIFIES, PAGES, OTHERS = 1000, 250, 250, 5
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def send_through(client, prefix: str) -> dict[str, datetime]:
    """Tracks, identifies and pages with properties and context; returns message id -> event time sent."""
    sent: dict[str, datetime] = {}
    context = {"os": {"name": "iOS"}, "campaign": {"source": "newsletter", "medium": "email"}, "locale": "de-DE"}
    for i in range(TRACKS):
        message_id, at = f"{prefix}-t{i}", START + timedelta(seconds=i)
        client.track(
            user_id=f"{prefix}-user-{i % 40}",
            event="Order Completed" if i % 10 == 0 else "Product Viewed",
            properties={"product_id": f"p{i % 7}", "revenue": 12.5} if i % 10 == 0 else {"product_id": f"p{i % 7}"},
            context=dict(context),
            timestamp=at,
            message_id=message_id,
        )
        sent[message_id] = at
    for i in range(IDENTIFIES):
        message_id, at = f"{prefix}-i{i}", START + timedelta(seconds=i)
        client.identify(
            user_id=f"{prefix}-user-{i % 40}",
            traits={"plan": "pro" if i % 2 else "free", "country": "DE"},
            context=dict(context),
            timestamp=at,
            message_id=message_id,
        )
        sent[message_id] = at
    for i in range(PAGES):
        message_id, at = f"{prefix}-p{i}", START + timedelta(seconds=i)
        client.page(
            anonymous_id=f"{prefix}-anon-{i % 25}",
            name="Pricing",
            properties={"url": "https://example.com/pricing"},
            context=dict(context),
            timestamp=at,
            message_id=message_id,
        )
        sent[message_id] = at
    for i in range(OTHERS):
        client.group(user_id=f"{prefix}-user-{i}", group_id="acme", timestamp=START)
        client.alias(previous_id=f"{prefix}-anon-{i}", user_id=f"{prefix}-user-{i}", timestamp=START)
    return sent


def test_segment_and_rudderstack_sdks_deliver_every_event_once_with_its_source(data_dir):
    errors: list[object] = []
    with ProcessServer(data_dir, COLLECTOR_WRITE_KEYS=WRITE_KEYS) as server:
        segment = SegmentClient("seg-key", host=server.url, on_error=lambda e, batch: errors.append(e), gzip=False)
        rudder = RudderClient("rudder-key", host=server.url, on_error=lambda e, batch: errors.append(e))  # gzip
        sent = send_through(segment, "seg")
        sent |= send_through(rudder, "rud")
        segment.flush()
        rudder.flush()
        segment.shutdown()
        rudder.shutdown()
        metrics = httpx.get(server.url + "/metrics").text
        logs = server.stop()
    assert errors == []
    assert 'collector_events_dropped_by_contract_total{type="group"} 10.0' in metrics
    assert 'collector_events_dropped_by_contract_total{type="alias"} 10.0' in metrics
    assert 'collector_events_accepted_total{source="web",type="track"} 1000.0' in metrics
    assert 'collector_events_accepted_total{source="backend",type="page"} 250.0' in metrics
    assert any(entry["msg"] == "collector stopped; spool rotated" for entry in logs)

    settings = IngestSettings(data_dir=data_dir, settle_seconds=0)
    # the landing sensor of `make dev` sees the rotated files in landing/collector/
    new, _ = new_landing_files(None, settings)
    assert new and all(name.startswith("collector/events-") and name.endswith(".jsonl") for name in new)
    summary = ingest_landing(settings)
    assert (summary.rows_in, summary.rows_loaded, summary.rows_duplicate, summary.rows_rejected) == (3000, 3000, 0, 0)
    assert len(summary.files) == len(new)
    loaded = query(
        data_dir,
        "select message_id, context->>'$.collector.source', type, timestamp, received_at from raw.events",
    )
    assert len(loaded) == 3000
    assert {row[0] for row in loaded} == set(sent)
    counts: dict[tuple[str, str], int] = {}
    for _, source, kind, *_ in loaded:
        counts[source, kind] = counts.get((source, kind), 0) + 1
    assert counts == {
        (source, kind): n
        for source in ("web", "backend")
        for kind, n in (("track", TRACKS), ("identify", IDENTIFIES), ("page", PAGES))
    }
    # sentAt is the SDK's clock at upload, on the same clock here: the corrected time is the one sent plus the
    # upload's transit time (receivedAt - sentAt), a few milliseconds
    for message_id, _, _, timestamp, received_at in loaded:
        transit = timestamp - sent[message_id].replace(tzinfo=None)
        assert timedelta(0) <= transit < timedelta(seconds=5), (message_id, transit)
        assert received_at > timestamp
    # traits land in raw.events.traits for both SDKs (RudderStack's sends them inside context.traits)
    assert query(
        data_dir,
        "select context->>'$.collector.source', count(*) from raw.events where type = 'identify'"
        " and traits->>'$.plan' in ('pro', 'free') and traits->>'$.country' = 'DE' group by 1 order by 1",
    ) == [("backend", IDENTIFIES), ("web", IDENTIFIES)]
    assert query(
        data_dir,
        "select count(*) from raw.events where type = 'track' and event = 'Order Completed'"
        " and properties->>'$.revenue' = '12.5' and context->>'$.campaign.source' = 'newsletter'",
    ) == [(2 * TRACKS // 10,)]
    assert query(data_dir, "select count(*) from raw.events where properties->>'$.name' = 'Pricing'") == [(2 * PAGES,)]


def test_kill_9_mid_stream_loses_no_acknowledged_event_and_lands_none_twice(data_dir):
    env = {"COLLECTOR_WRITE_KEYS": WRITE_KEYS, "COLLECTOR_ROTATE_SECONDS": "0.3", "COLLECTOR_ROTATE_EVENTS": "400"}
    sent: set[str] = set()
    acked: set[str] = set()
    lock = threading.Lock()
    server = ProcessServer(data_dir, **env).start()

    def stream(worker: int) -> None:
        with httpx.Client(base_url=server.url, auth=("seg-key", ""), timeout=5) as client:
            for n in range(100_000):
                batch = [
                    {
                        "type": "track",
                        "messageId": f"w{worker}-{n}-{i}",
                        "userId": f"u{i}",
                        "event": "Clicked",
                        "timestamp": datetime.now(UTC).isoformat(),
                        "properties": {"n": n},
                    }
                    for i in range(50)
                ]
                with lock:
                    sent.update(event["messageId"] for event in batch)
                try:
                    answer = client.post("/v1/batch", json={"batch": batch, "sentAt": datetime.now(UTC).isoformat()})
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    with lock:
                        acked.update(event["messageId"] for event in batch)

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    server.stop(signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=30)
    assert len(acked) > 1000, "the stream should have been acknowledged for a while before the kill"

    # whatever is in the landing folder right after the kill is whole: every line complete JSON
    before_restart = landed_lines(data_dir)
    assert all(line["messageId"] in acked or line["messageId"] in sent for line in before_restart)

    restarted = ProcessServer(data_dir, **env).start()
    recovered = httpx.get(restarted.url + "/metrics").text
    restarted.stop()
    assert "collector_recovered_files_total" in recovered
    assert not list((data_dir / "spool" / "collector").rglob("*.jsonl"))

    lines = landed_lines(data_dir)
    ids = [line["messageId"] for line in lines]
    assert len(ids) == len(set(ids)), "an event landed twice"
    summary = ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    assert (summary.rows_duplicate, summary.rows_rejected) == (0, 0)
    loaded = {row[0] for row in query(data_dir, "select message_id from raw.events")}
    assert acked <= loaded, f"{len(acked - loaded)} acknowledged events lost"
    assert loaded <= sent
    assert len(loaded) == len(ids)
    print(f"kill -9: {len(sent)} sent, {len(acked)} acknowledged, {len(loaded)} landed")


def test_sdks_retry_across_a_kill_9_and_restart_and_every_event_lands_once(data_dir):
    env = {"COLLECTOR_WRITE_KEYS": WRITE_KEYS, "COLLECTOR_ROTATE_SECONDS": "0.5"}
    server = ProcessServer(data_dir, **env).start()
    errors: list[object] = []
    segment = SegmentClient("seg-key", host=server.url, on_error=lambda e, batch: errors.append(e), upload_size=50)
    rudder = RudderClient("rudder-key", host=server.url, on_error=lambda e, batch: errors.append(e), upload_size=50)
    sent: dict[str, list[str]] = {"web": [], "backend": []}

    def stream(client, source: str, prefix: str) -> None:
        for i in range(1500):
            message_id = f"{prefix}-{i}"
            client.track(user_id=f"{prefix}-u{i % 30}", event="Clicked", properties={"i": i}, message_id=message_id)
            sent[source].append(message_id)
            time.sleep(0.001)

    streams = [
        threading.Thread(target=stream, args=(segment, "web", "seg")),
        threading.Thread(target=stream, args=(rudder, "backend", "rud")),
    ]
    for thread in streams:
        thread.start()
    time.sleep(1.0)
    server.stop(signal.SIGKILL)  # mid-stream: the SDKs' uploads in flight fail and are retried
    killed_with = len(sent["web"]) + len(sent["backend"])
    server = ProcessServer(data_dir, port=server.port, **env).start()
    for thread in streams:
        thread.join()
    segment.flush()
    rudder.flush()
    segment.shutdown()
    rudder.shutdown()
    server.stop()
    assert errors == []
    assert 0 < killed_with < 3000, "the kill should fall in the middle of the stream"

    summary = ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    assert summary.rows_rejected == 0
    loaded = query(data_dir, "select context->>'$.collector.source', message_id from raw.events")
    for source in ("web", "backend"):
        ids = [message_id for got_source, message_id in loaded if got_source == source]
        assert sorted(ids) == sorted(sent[source]), source
    # events stored before the kill but not acknowledged were sent again: ingestion keeps each message id once
    print(f"SDKs across kill -9: 3000 sent, {summary.rows_in} landed lines, {summary.rows_duplicate} re-sent copies")
