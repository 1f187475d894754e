"""The ASGI app: Segment's HTTP Tracking API in front of the spool.

Endpoints: POST /v1/batch (also /v1/import), /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias
(and analytics.js's short forms /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a); GET /health and /metrics (on its own
loopback port with COLLECTOR_METRICS_PORT, behind a bearer token with COLLECTOR_METRICS_TOKEN).

Events of erased users (userId or anonymousId on the suppression list, privacy.suppression) are answered as accepted,
as Segment answers events it drops, but not spooled; collector_events_suppressed_total counts them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import os
import signal
import time
import zlib
from collections import Counter as Tally
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector.events import SPOOLED_TYPES, Accepted, Rejection, RequestInfo, event_ids, prepare, too_deep
from collector.metrics import CollectorMetrics
from collector.server import SideServer
from collector.spool import Spool, SpoolWriter
from privacy.suppression import Suppressor
from settings import CollectorSettings

log = logging.getLogger("collector")

# path -> the type its events get (None: a batch, each event names its own type)
EVENT_ENDPOINTS: dict[str, str | None] = {"batch": None, "import": None}
for _kind in ("track", "identify", "page", "screen", "group", "alias"):
    EVENT_ENDPOINTS[_kind] = _kind
    EVENT_ENDPOINTS[_kind[0]] = _kind


MAX_REJECTIONS_LISTED = 100  # per response; the count covers all of them


class RequestRefused(Exception):
    """The request as a whole is refused: HTTP status, a reason code for metrics and a message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def basic_auth_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic Authorization header (the write key); None when there is no header."""
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise RequestRefused(401, "unsupported_auth", "Authorization must be HTTP Basic with the write key as user")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RequestRefused(401, "malformed_auth", "Authorization header is not valid Basic credentials") from None
    return decoded.partition(":")[0]


class Collector:
    """Holds the settings, the spool writer and the metrics of one running app."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.metrics = CollectorMetrics()
        self.suppressor = Suppressor(settings.privacy)  # re-reads the list when it changes, at most once a second
        self.spool = Spool(settings.spool_root, settings.landing_dir, settings.rotate_events)
        self.writer = SpoolWriter(self.spool, settings.rotate_seconds)
        self.tolerance = timedelta(hours=settings.future_tolerance_hours)
        self.spool.on_rotate = self._rotated
        self.metrics.watch_spool(self.spool.lag_seconds, lambda: self.spool.events)

    def _rotated(self, path: Any, events: int) -> None:
        self.metrics.rotations.inc()
        log.info("rotated spool into landing", extra={"file": path.name, "events": events})

    # -- request handling -------------------------------------------------------------------------------------

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_batch_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestRefused(400, "body_too_large", f"request body of {declared} bytes is over {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestRefused(400, "body_too_large", f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        self.metrics.request_bytes.inc(size)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding not in ("gzip", "x-gzip"):
            raise RequestRefused(415, "unsupported_encoding", f"unsupported Content-Encoding: {encoding[:40]}")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            plain = inflater.decompress(body, limit + 1)
        except zlib.error as error:
            raise RequestRefused(400, "bad_gzip", f"gzip body cannot be decompressed: {error}") from None
        if len(plain) > limit:
            raise RequestRefused(400, "body_too_large", f"decompressed body is over the limit of {limit} bytes")
        if not inflater.eof:
            raise RequestRefused(400, "bad_gzip", "gzip body is truncated")
        if inflater.unused_data:
            # zlib stops at the end of the first member: a second member or trailing bytes would be dropped unread
            raise RequestRefused(
                400,
                "bad_gzip",
                f"gzip body has {len(inflater.unused_data)} bytes after the end of its gzip stream"
                " (a second member or trailing data); send exactly one gzip member",
            )
        return plain

    def _source(self, key: str | None) -> str:
        if not key:
            raise RequestRefused(
                401, "missing_write_key", "no write key: send it as the Basic auth user name or as writeKey"
            )
        source = self.settings.write_keys.get(key)
        if source is None:
            raise RequestRefused(401, "unknown_write_key", "unknown write key")
        return source

    async def _ingest(self, request: Request, forced_type: str | None, batch: bool) -> tuple[int, dict[str, Any]]:  # noqa: C901 - older than the complexity rule; split when next changed
        header_key = basic_auth_user(request.headers.get("authorization"))
        source = self._source(header_key) if header_key is not None else None
        body = await self._read_body(request)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise RequestRefused(400, "invalid_json", f"malformed JSON: {error}") from None
        if not isinstance(document, dict):
            raise RequestRefused(400, "invalid_json", "request body is not a JSON object")
        if source is None:
            body_key = document.get("writeKey")
            source = self._source(body_key if isinstance(body_key, str) else None)

        if batch:
            items = document.get("batch")
            if not isinstance(items, list):
                raise RequestRefused(400, "invalid_batch", "batch request without a `batch` list")
        else:
            items = [document]
        base_context = document.get("context") if batch and type(document.get("context")) is dict else None
        if base_context is not None and too_deep(base_context, self.settings.max_json_depth - 1):
            raise RequestRefused(
                400, "too_deep", f"batch context nests more than {self.settings.max_json_depth} levels deep"
            )
        info = RequestInfo(
            source=source,
            received_at=datetime.now(UTC),
            sent_at=document.get("sentAt") if batch else None,
            base_context=base_context,
            max_event_bytes=self.settings.max_event_bytes,
            future_tolerance=self.tolerance,
            max_depth=self.settings.max_json_depth,
            min_event_time=self.settings.min_event_time,
        )
        lines: list[bytes] = []
        rejected: list[Rejection] = []
        kinds: Tally[str] = Tally()
        suppressing = bool(self.suppressor.hashes)  # one look per request; nothing more when the list is empty
        suppressed = 0
        for index, item in enumerate(items):
            outcome = prepare(item, index, info, forced_type)
            if isinstance(outcome, Accepted):
                kinds[outcome.type] += 1
                if outcome.line is None:
                    continue
                if suppressing and self.suppressor.suppressed(*event_ids(item)):
                    suppressed += 1
                else:
                    lines.append(outcome.line)
            else:
                rejected.append(outcome)
        if suppressed:
            self.metrics.events_suppressed.inc(suppressed)
        if lines:
            data = b"\n".join(lines) + b"\n"
            try:
                await self.writer.append(data, len(lines))
            except OSError as error:
                log.error("spool write failed", extra={"error": str(error), "events": len(lines)})
                raise RequestRefused(503, "spool_unavailable", "events could not be stored; retry") from None
            self.metrics.spooled_bytes.inc(len(data))
            self.metrics.spooled_events.inc(len(lines))
        for kind, count in kinds.items():
            self.metrics.events_accepted.labels(source, kind).inc(count)
            if kind not in SPOOLED_TYPES:
                self.metrics.events_dropped.labels(kind).inc(count)
        for rejection in rejected:
            self.metrics.events_rejected.labels(rejection.code).inc()
        if not rejected:
            return 200, {"success": True}
        log.info(
            "rejected events",
            extra={
                "source": source,
                "accepted": sum(kinds.values()),
                "rejected": len(rejected),
                "first_reason": rejected[0].reason,
            },
        )
        details = [rejection.as_json() for rejection in rejected[:MAX_REJECTIONS_LISTED]]
        if kinds:
            return 200, {
                "success": True,
                "accepted": sum(kinds.values()),
                "rejected_count": len(rejected),
                "rejected": details,
            }
        message = rejected[0].reason if len(rejected) == 1 else f"all {len(rejected)} events were rejected"
        return 400, {
            "success": False,
            "code": rejected[0].code,
            "message": message,
            "rejected_count": len(rejected),
            "rejected": details,
        }

    async def event_endpoint(self, request: Request) -> Response:
        """POST handler of every Tracking API path."""
        started = time.perf_counter()
        name = request.path_params["name"]
        if name not in EVENT_ENDPOINTS:
            return json_response({"success": False, "code": "not_found", "message": f"no endpoint /v1/{name}"}, 404)
        forced_type = EVENT_ENDPOINTS[name]
        try:
            status, payload = await self._ingest(request, forced_type, batch=forced_type is None)
        except RequestRefused as refused:
            self.metrics.requests_rejected.labels(refused.code).inc()
            status = refused.status
            payload = {"success": False, "code": refused.code, "message": refused.message}
            if refused.status != 503:
                log.info(
                    "refused request", extra={"path": request.url.path, "code": refused.code, "reason": refused.message}
                )
        except ClientDisconnect:
            self.metrics.requests_rejected.labels("client_disconnected").inc()
            return Response(status_code=499)
        endpoint = forced_type or "batch"
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.request_seconds.observe(time.perf_counter() - started)
        return json_response(payload, status)

    async def health(self, request: Request) -> Response:
        """Liveness and the spool's state."""
        return json_response(
            {"status": "ok", "spool_events": self.spool.events, "spool_lag_seconds": round(self.spool.lag_seconds(), 3)}
        )

    async def metrics_endpoint(self, request: Request) -> Response:
        """Prometheus text format; with COLLECTOR_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
        token = self.settings.metrics_token
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return json_response(
                    {"success": False, "code": "unauthorized", "message": "/metrics needs Authorization: Bearer"},
                    401,
                )
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def _exit_with_supervisor(self) -> None:
        """A worker whose supervisor died (kill -9) shuts down gracefully instead of serving on as an orphan."""
        parent = os.getppid()
        while True:
            await asyncio.sleep(1)
            if os.getppid() != parent:
                log.warning("supervisor process is gone; shutting down")
                os.kill(os.getpid(), signal.SIGTERM)
                return

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.settings.dev_key_warning:
            log.warning("COLLECTOR_WRITE_KEYS is not set: accepting the development key `dev` for source `dev`")
        recovered = await self.writer.start()
        self.metrics.recovered_files.inc(len(recovered))
        log.info(
            "collector ready",
            extra={
                "sources": sorted(set(self.settings.write_keys.values())),
                "landing": str(self.settings.landing_dir),
                "spool": str(self.spool.spool_dir),
                "recovered_files": len(recovered),
                "rotate_seconds": self.settings.rotate_seconds,
                "rotate_events": self.settings.rotate_events,
            },
        )
        watch = asyncio.create_task(self._exit_with_supervisor()) if self.settings.workers > 1 else None
        side = None
        if self.settings.metrics_port is not None:
            side = SideServer(
                Starlette(routes=[Route("/metrics", self.metrics_endpoint, methods=["GET"])]),
                self.settings.metrics_port,
                self.settings,
            )
            await side.start()
            log.info("metrics served apart", extra={"metrics": f"http://127.0.0.1:{side.port}/metrics"})
        try:
            yield
        finally:
            if watch:
                watch.cancel()
            if side is not None:
                await side.stop()
            landed = await self.writer.stop()
            log.info("collector stopped; spool rotated", extra={"file": landed.name if landed else None})


def create_app(settings: CollectorSettings | None = None) -> Starlette:
    """The collector as an ASGI app (settings from the environment by default)."""
    collector = Collector(settings or CollectorSettings.from_env())
    metrics_here = collector.settings.metrics_port is None  # else on its own port (see lifespan)
    app = Starlette(
        routes=[
            Route("/v1/{name}", collector.event_endpoint, methods=["POST"]),
            Route("/health", collector.health, methods=["GET"]),
        ]
        + ([Route("/metrics", collector.metrics_endpoint, methods=["GET"])] if metrics_here else []),
        lifespan=collector.lifespan,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(collector.settings.cors_origins),
                allow_methods=["POST", "GET"],
                allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
                max_age=86400,
            )
        ]
        if collector.settings.cors_origins
        else [],
    )
    app.state.collector = collector
    return app
