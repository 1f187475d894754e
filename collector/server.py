"""uvicorn as the collector runs it: a read deadline per request, a header size bound and a connection cap.

uvicorn has a keep-alive timeout but no timeout on reading a request: a client that drips its headers one byte a
second holds a connection (and a file descriptor) for as long as it likes. `CollectorProtocol` arms a deadline when a
connection opens and when the first byte of a request arrives, and disarms it when the request's body is complete;
a request not read by then is answered 408 (or, mid-body, the connection is closed). It bounds the bytes of request
line and headers (httptools has no bound of its own) and closes connections beyond the cap as they are accepted,
so that file descriptors stay free for the spool and for real clients.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from settings import CollectorSettings

log = logging.getLogger("collector")

FD_RESERVE = 64  # descriptors kept for the spool, landing renames, logs, the listening socket and the event loop


class CollectorConfig(uvicorn.Config):
    """uvicorn's Config plus the collector's connection limits (read by `CollectorProtocol`; pickled to workers)."""

    def __init__(
        self, app: Any, *, read_timeout: float, max_header_bytes: int, max_connections: int, **kwargs: Any
    ) -> None:
        # Not uvicorn's limit_concurrency: it counts idle connections too, so slow ones would get kept-alive clients
        # answered 503; the cap is applied as connections are accepted instead (CollectorProtocol.connection_made).
        super().__init__(app, **kwargs)
        self.read_timeout = read_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections


def _response(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message
    )


TIMEOUT_408 = _response(b"408 Request Timeout", b"request not received within the read timeout")
TOO_LARGE_431 = _response(b"431 Request Header Fields Too Large", b"request headers are too large")
BUSY_503 = _response(b"503 Service Unavailable", b"too many connections; retry")


class CollectorProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline on reading each request, a header byte bound and a connection cap."""

    config: CollectorConfig

    def __init__(self, config: CollectorConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.read_timeout: float | None = getattr(config, "read_timeout", None)
        self.max_header_bytes: int | None = getattr(config, "max_header_bytes", None)
        self.max_connections: int | None = getattr(config, "max_connections", None)
        self.read_deadline: asyncio.TimerHandle | None = None
        self.reading_headers = True  # from the end of one request (or the connection's start) to the next's headers
        self.header_bytes = 0
        self.parsed_parts = 0  # headers and messages completed so far

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            # Refused at once rather than read: a held descriptor is what a flood of connections is after.
            transport.write(BUSY_503)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.read_deadline is None and not self.transport.is_closing():
            self._arm()  # the first byte of a request on a kept-alive connection
        parts, headers_pending = self.parsed_parts, self.reading_headers
        super().data_received(data)
        # Only a chunk that ended nothing is header bytes through and through (others carry a body too).
        if headers_pending and parts == self.parsed_parts and self.max_header_bytes is not None:
            if self.transport.is_closing():
                return
            self.header_bytes += len(data)
            if self.header_bytes > self.max_header_bytes:
                self.logger.warning("request headers over %d bytes; closing", self.max_header_bytes)
                self._refuse(TOO_LARGE_431)

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self.header_bytes = 0
        self.parsed_parts += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_headers = True
        self.parsed_parts += 1
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        if self.read_timeout is not None:
            self._disarm()
            self.read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _read_timed_out(self) -> None:
        self.read_deadline = None
        if self.transport.is_closing():
            return
        if self.reading_headers:
            self._refuse(TIMEOUT_408)
        else:
            # Mid-body: the app is reading this request, it sees a disconnect (and answers 499 to nobody).
            self.logger.info("request body not received within %gs; closing", self.read_timeout)
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(response)
        self.transport.close()


def effective_max_connections(wanted: int) -> int:
    """The connection cap, lowered under the soft open-file limit minus a reserve when that is smaller."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted + FD_RESERVE <= soft:
        return wanted
    lowered = max(1, soft - FD_RESERVE)
    log.warning(
        "COLLECTOR_MAX_CONNECTIONS lowered under the open-file limit",
        extra={"wanted": wanted, "max_connections": lowered, "open_file_limit": soft},
    )
    return lowered


def uvicorn_config(app: Any, settings: CollectorSettings, **kwargs: Any) -> CollectorConfig:
    """The uvicorn Config of the ingest port: the collector's protocol, timeouts and connection cap."""
    return CollectorConfig(
        app,
        http=CollectorProtocol,
        read_timeout=settings.read_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_connections=effective_max_connections(settings.max_connections),
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]  # a float works (call_later)
        **kwargs,
    )


class SideServer:
    """A second uvicorn server in the same event loop (the metrics port), on a socket bound by the caller."""

    def __init__(self, app: Any, port: int, settings: CollectorSettings) -> None:
        self.socket = socket.create_server(("127.0.0.1", port), reuse_port=False)
        config = uvicorn_config(app, settings, lifespan="off", log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    async def start(self) -> None:
        # _serve, not serve: serve would take over the signal handlers of the ingest server.
        self.task = asyncio.create_task(self.server._serve(sockets=[self.socket]))
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.socket.close()
