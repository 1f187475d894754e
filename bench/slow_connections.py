"""`python -m bench.slow_connections`: the collector under 1000 connections that drip their headers.

For each scenario the collector runs in its own process on 127.0.0.1 with an open-file limit of 1024 (the usual
default) while this process sends real `/v1/batch` requests (keep-alive clients and clients that open a fresh
connection for each request) and, in the attacked scenarios, opens N connections that send one header byte a second
and never finish. Scenarios: `baseline` (no slow connections), `after` (`python -m collector` as it runs now: read
deadline, connection cap) and `before` (the same app on plain uvicorn as the collector ran it before, with no read
timeout or cap). Printed per second: slow connections the server still holds (socket descriptors of its process),
its open descriptors and RSS; then status counts and latencies of the real requests and when slow connections were
closed. Figures, not pass/fail; results go to bench/results/slow_connections.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "slow_connections.json"
WRITE_KEY = "bench-key"
HOST = "127.0.0.1"  # only ever loopback
OPEN_FILE_LIMIT = 1024

# The collector app on plain uvicorn, as `python -m collector` ran it before the read deadline and cap.
PLAIN_UVICORN = """
import uvicorn
from collector.app import create_app
from collector.logs import log_config
from settings import CollectorSettings
settings = CollectorSettings.from_env()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=log_config("WARNING"),
            access_log=False, timeout_graceful_shutdown=30)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILE_LIMIT, OPEN_FILE_LIMIT))


def start_server(mode: str, port: int, data_dir: Path, read_timeout: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "COLLECTOR_HOST": HOST,
        "COLLECTOR_PORT": str(port),
        "COLLECTOR_WRITE_KEYS": f"{WRITE_KEY}:bench",
        "COLLECTOR_READ_TIMEOUT_SECONDS": str(read_timeout),
    }
    command = [sys.executable, "-c", PLAIN_UVICORN] if mode == "before" else [sys.executable, "-m", "collector"]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit_open_files,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as probe:
                probe.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if probe.recv(16).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"collector ({mode}) did not come up")


def server_figures(pid: int) -> dict[str, int]:
    """Open descriptors, sockets among them, and RSS (KiB) of the server process."""
    fds = sockets = 0
    try:
        for entry in os.scandir(f"/proc/{pid}/fd"):
            fds += 1
            with contextlib.suppress(OSError):  # a descriptor closed while we look
                sockets += os.readlink(entry.path).startswith("socket:")
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return {"fds": -1, "sockets": -1, "rss_kib": -1}
    return {"fds": fds, "sockets": sockets, "rss_kib": rss}


def batch_body(size: int = 20) -> bytes:
    events = [
        {
            "type": "track",
            "messageId": str(uuid.uuid4()),
            "anonymousId": f"anon-{n}",
            "event": "Product Viewed",
            "properties": {"product_id": f"p{n}", "price": 9.99},
            "timestamp": "2026-11-01T10:00:00Z",
        }
        for n in range(size)
    ]
    return orjson.dumps({"batch": events, "writeKey": WRITE_KEY})


async def http_post(port: int, body: bytes, reuse: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None):
    """One POST /v1/batch on a given (or a fresh) connection; returns the status line's code and the connection."""
    reader, writer = reuse or await asyncio.open_connection(HOST, port)
    writer.write(
        b"POST /v1/batch HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    await reader.readexactly(length)
    return status, (reader, writer)


async def real_client(port: int, keep_alive: bool, until: float, started: float, out: list[dict[str, Any]]) -> None:
    """Batches one after another (a pause of 50 ms between them), until `until`; every outcome recorded."""
    connection = None
    while time.monotonic() < until:
        sent = time.monotonic()
        try:
            status, connection = await asyncio.wait_for(http_post(port, batch_body(), connection), timeout=5)
            outcome: int | str = status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            outcome, connection = f"error:{type(error).__name__}", None
        except TimeoutError:
            outcome, connection = "timeout", None
        if connection is not None and (not keep_alive or outcome != 200):
            connection[1].close()
            connection = None
        out.append({"at": round(sent - started, 3), "outcome": outcome, "seconds": time.monotonic() - sent})
        await asyncio.sleep(0.05)
    if connection is not None:
        connection[1].close()


async def slow_client(port: int, until: float, started: float, out: dict[str, Any]) -> None:
    """A connection that sends a request's headers one byte a second and never ends them."""
    header = b"POST /v1/batch HTTP/1.1\r\nHost: bench\r\nUser-Agent: slow\r\nX-Padding: " + b"p" * 200
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout=5)
    except (OSError, TimeoutError) as error:
        out["connect_failed"][type(error).__name__] += 1
        return
    out["open"] += 1
    answer: bytes | None = None  # what the server sent before it closed; None while it holds the connection
    try:
        for byte in header:
            if time.monotonic() >= until:
                break
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(64), timeout=1.0)
            except TimeoutError:
                continue
            break
    except OSError:
        answer = b"(reset)"
    if answer is not None:
        out["closed_at"].append(round(time.monotonic() - started, 2))
        out["answers"][answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed without answer)"] += 1
    out["open"] -= 1
    writer.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def scenario(mode: str, slow: int, seconds: float, read_timeout: float) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as work:
        process = start_server(mode, port, Path(work), read_timeout)
        try:
            started = time.monotonic()
            until = started + seconds
            real: list[dict[str, Any]] = []
            slow_out: dict[str, Any] = {"open": 0, "closed_at": [], "answers": Counter(), "connect_failed": Counter()}
            timeline: list[dict[str, Any]] = []
            clients = [asyncio.create_task(real_client(port, True, until, started, real)) for _ in range(3)]
            clients += [asyncio.create_task(real_client(port, False, until, started, real)) for _ in range(2)]
            attackers: list[asyncio.Task[None]] = []
            if slow:
                await asyncio.sleep(1.0)
                for n in range(slow):  # 200 connections every 0.1 s: all open within about half a second
                    attackers.append(asyncio.create_task(slow_client(port, until, started, slow_out)))
                    if n % 200 == 199:
                        await asyncio.sleep(0.1)
            while time.monotonic() < until:
                figures = server_figures(process.pid)
                at = round(time.monotonic() - started, 1)
                timeline.append({"t": at, "slow_open_client_side": slow_out["open"], **figures})
                await asyncio.sleep(1.0)
            await asyncio.wait_for(asyncio.gather(*clients, *attackers, return_exceptions=True), timeout=15)
            peak = max(timeline, key=lambda row: row["fds"])
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    latencies = [row["seconds"] for row in real if row["outcome"] == 200]
    after_attack = [row for row in real if row["at"] >= 1.0] if slow else real
    return {
        "mode": mode,
        "slow_connections": slow,
        "seconds": seconds,
        "read_timeout_seconds": read_timeout if mode != "before" else None,
        "requests": len(real),
        "outcomes": dict(Counter(str(row["outcome"]) for row in real)),
        "outcomes_after_attack_start": dict(Counter(str(row["outcome"]) for row in after_attack)),
        "latency_p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "latency_p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
        "latency_max_ms": round(1000 * max(latencies), 2) if latencies else None,
        "slow_opened": slow - sum(slow_out["connect_failed"].values()),
        "slow_connect_failed": dict(slow_out["connect_failed"]),
        "slow_closed_by_server": len(slow_out["closed_at"]),
        "slow_closed_at_seconds": {
            "first": min(slow_out["closed_at"], default=None),
            "median": statistics.median(slow_out["closed_at"]) if slow_out["closed_at"] else None,
            "last": max(slow_out["closed_at"], default=None),
        },
        "slow_answers": dict(slow_out["answers"]),
        "server_peak": peak,
        "timeline": timeline,
    }


def show(result: dict[str, Any]) -> None:
    print(f"\n== {result['mode']}: {result['slow_connections']} slow connections, {result['seconds']:g} s ==")
    print("  t(s)  server sockets  server fds  rss(MiB)  slow open (client side)")
    for row in result["timeline"]:
        print(
            f"  {row['t']:>4}  {row['sockets']:>14}  {row['fds']:>10}  {row['rss_kib'] / 1024:>8.1f}"
            f"  {row['slow_open_client_side']:>8}"
        )
    print(f"  real requests: {result['requests']}  outcomes: {result['outcomes']}")
    print(
        f"  latency of 200s: p50 {result['latency_p50_ms']} ms  p99 {result['latency_p99_ms']} ms"
        f"  max {result['latency_max_ms']} ms"
    )
    if result["slow_connections"]:
        print(
            f"  slow: opened {result['slow_opened']}, connect failed {result['slow_connect_failed']}, "
            f"closed by server {result['slow_closed_by_server']} at {result['slow_closed_at_seconds']}"
        )
        print(f"  what the slow ones got: {result['slow_answers']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_connections", description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections (default 1000)")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each scenario (default 25, max 40)")
    parser.add_argument("--read-timeout", type=float, default=10.0, help="COLLECTOR_READ_TIMEOUT_SECONDS (default 10)")
    parser.add_argument("--modes", default="baseline,after,before")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 40.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.slow + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    results = []
    for mode in args.modes.split(","):
        slow = 0 if mode == "baseline" else args.slow
        result = asyncio.run(scenario(mode, slow, seconds, args.read_timeout))
        show(result)
        results.append(result)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "server_open_file_limit": OPEN_FILE_LIMIT,
        "scenarios": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
