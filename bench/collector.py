"""`python -m bench.collector`: the collector's sustained events/s and request latency, against a bare baseline.

For batch sizes 1, 100 and 500, a load generator in this process keeps `--concurrency` keep-alive connections busy
for `--seconds` with Segment-shaped `/v1/batch` requests, first against the collector (`python -m collector` in its
own process, spooling into a temporary DATA_DIR with fsync before each answer), then against the collector with
`--workers` processes (COLLECTOR_WORKERS), then against a baseline in its own process on the same stack (Starlette
on uvicorn, one process) that only parses the JSON and answers 200. Results go to bench/results/collector.json and
a table on stdout.

`--e2e` instead measures, against a running `make dev` (Dagster with the landing sensor, plus the collector), the
seconds from a Segment SDK call to the event's user appearing in $DATA_DIR/serving.duckdb (marts.user_segments),
with the moment its spool file reached the landing folder on the way; each trial starts once no run has been queued
or running for 12 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.probes import serving_has_user, wait_until_idle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "collector.json"
BATCH_SIZES = (1, 100, 500)
WRITE_KEY = "bench-key"


# -- the baseline server ------------------------------------------------------------------------------------------


def baseline_app():
    """The same stack with nothing behind it: read the body, parse the JSON, answer 200."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def accept(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(b'{"success":true}', media_type="application/json")

    return Starlette(routes=[Route("/v1/{name}", accept, methods=["POST"]), Route("/health", accept_health)])


async def accept_health(request) -> object:
    from starlette.responses import Response

    return Response(b'{"status":"ok"}', media_type="application/json")


def serve_baseline(port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- load generation ----------------------------------------------------------------------------------------------


def sample_event(n: int) -> dict[str, object]:
    """A track call as analytics-python sends it (about 600 bytes)."""
    return {
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "userId": f"user-{n % 5000}",
        "anonymousId": str(uuid.uuid4()),
        "event": "Product Viewed" if n % 3 else "Order Completed",
        "properties": {"product_id": f"sku-{n % 300}", "price": 19.99, "currency": "EUR", "category": "shoes"},
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "os": {"name": "iOS", "version": "18.1"},
            "ip": "203.0.113.7",
            "locale": "de-DE",
            "campaign": {"source": "newsletter", "medium": "email", "name": "black_friday"},
        },
        "integrations": {},
        "timestamp": datetime.now(UTC).isoformat(),
    }


def build_requests(port: int, batch_size: int, distinct: int = 16) -> list[bytes]:
    """Whole HTTP/1.1 requests, ready to write: `distinct` different bodies of `batch_size` events."""
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    requests = []
    for d in range(distinct):
        body = orjson.dumps(
            {"batch": [sample_event(d * batch_size + i) for i in range(batch_size)],
             "sentAt": datetime.now(UTC).isoformat()}
        )  # fmt: skip
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append(head + body)
    return requests


async def _connection(port: int, requests: list[bytes], deadline: float, record_from: float, out: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while True:
            start = time.perf_counter()
            if start >= deadline:
                return
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if start >= record_from:
                out["latencies"].append(time.perf_counter() - start)
                if status != 200:
                    out["errors"] += 1
    finally:
        writer.close()


def load(port: int, batch_size: int, seconds: float, concurrency: int, warmup: float = 1.0) -> dict[str, float]:
    """Drive `port` for warmup + seconds; figures cover the measured part only."""
    requests = build_requests(port, batch_size)
    out: dict = {"latencies": [], "errors": 0}

    async def run() -> float:
        begin = time.perf_counter()
        record_from, deadline = begin + warmup, begin + warmup + seconds
        await asyncio.gather(*(_connection(port, requests, deadline, record_from, out) for _ in range(concurrency)))
        return time.perf_counter() - record_from

    elapsed = asyncio.run(run())
    latencies = sorted(out["latencies"])
    count = len(latencies)
    return {
        "batch_size": batch_size,
        "requests": count,
        "errors": out["errors"],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(count / elapsed, 1),
        "events_per_s": round(count * batch_size / elapsed),
        "p50_ms": round(1000 * latencies[count // 2], 2) if count else None,
        "p99_ms": round(1000 * latencies[min(count - 1, int(count * 0.99))], 2) if count else None,
    }


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(command, env=env, cwd=ROOT.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{' '.join(command)} did not come up")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def throughput(seconds: float, concurrency: int, workers: int) -> dict[str, object]:
    """Collector (one process, and `workers` processes) and baseline at each batch size, with the ratios."""
    work = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    env = {**os.environ, "DATA_DIR": str(work), "COLLECTOR_WRITE_KEYS": f"{WRITE_KEY}:bench"}
    runs: list[dict[str, object]] = []
    targets = [("collector", 1), (f"collector x{workers}", workers), ("baseline", 1)] if workers > 1 else [
        ("collector", 1), ("baseline", 1)]  # fmt: skip
    try:
        for target, processes in targets:
            port = free_port()
            command = (
                [sys.executable, "-m", "bench.collector", "--serve-baseline", str(port)]
                if target == "baseline"
                else [sys.executable, "-m", "collector", "--port", str(port), "--log-level", "warning"]
            )
            process = start(command, {**env, "COLLECTOR_WORKERS": str(processes)}, port)
            try:
                for batch_size in BATCH_SIZES:
                    runs.append({"target": target, **load(port, batch_size, seconds, concurrency)})
            finally:
                stop(process)
        landed = sum(p.read_bytes().count(b"\n") for p in (work / "landing" / "collector").glob("*.jsonl"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by = {(run["target"], run["batch_size"]): run for run in runs}
    ratios = {
        target: {
            str(size): round(by[target, size]["events_per_s"] / by["baseline", size]["events_per_s"], 2)
            for size in BATCH_SIZES
        }
        for target, _ in targets
        if target != "baseline"
    }
    return {"runs": runs, "over_baseline_events_per_s": ratios, "events_landed_by_collector": landed}


# -- end to end ---------------------------------------------------------------------------------------------------


def landed_file_with(landing: Path, message_id: str, seen: set[Path]) -> bool:
    needle = message_id.encode()
    for path in landing.glob("*.jsonl"):
        if path not in seen:
            if needle in path.read_bytes():
                return True
            seen.add(path)
    return False


class SteadyTraffic:
    """An app sending `rate` track calls a second through the Segment SDK, in a thread, until stopped."""

    def __init__(self, url: str, write_key: str, rate: float) -> None:
        from segment.analytics.client import Client

        self.client = Client(write_key, host=url, sync_mode=True)
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        period = 1.0 / self.rate
        next_at = time.perf_counter()
        while not self._stop.is_set():
            n = self.sent
            self.client.track(user_id=f"steady-{n % 500}", event="Page Scrolled", properties={"depth": n % 100})
            self.sent += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def __enter__(self) -> SteadyTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def end_to_end(
    url: str, write_key: str, data_dir: Path, trials: int, timeout: float, steady_rate: float = 0.0
) -> dict[str, object]:
    """Seconds from an SDK call to the user in the serving copy, per trial, with `make dev` running: each trial
    on an idle system, or (steady_rate > 0) while an app keeps sending that many events a second, every trial
    15 s after the previous one was served."""
    landing, serving = data_dir / "landing" / "collector", data_dir / "serving.duckdb"
    dagster_home = os.environ.get("DAGSTER_HOME", str(data_dir / "dagster_home"))
    traffic = SteadyTraffic(url, write_key, steady_rate) if steady_rate > 0 else contextlib.nullcontext()
    with traffic:
        results = _trials(url, write_key, landing, serving, dagster_home, trials, timeout, steady_rate > 0)
    served = [r["in_serving_copy_s"] for r in results if r["in_serving_copy_s"] is not None]
    return {
        "url": url,
        "steady_events_per_s": steady_rate,
        "steady_events_sent": traffic.sent if steady_rate > 0 else 0,
        "trials": results,
        "median_s": statistics.median(served) if served else None,
        "max_s": max(served) if served else None,
        "missed": len(results) - len(served),
    }


def _trials(url, write_key, landing, serving, dagster_home, trials, timeout, steady) -> list[dict[str, object]]:
    from segment.analytics.client import Client

    results = []
    for trial in range(trials):
        if steady:
            time.sleep(15 if trial else 30)  # a trial lands wherever the runs the traffic starts happen to be
        else:
            # on an idle system: the previous trial's refresh and the follow-up run after it have finished
            wait_until_idle(dagster_home, timeout)
        user_id, message_id = f"e2e-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
        client = Client(write_key, host=url, sync_mode=True)
        started = time.perf_counter()
        client.track(user_id=user_id, event="Feature Used", properties={"feature": "e2e_probe"}, message_id=message_id)
        acknowledged = time.perf_counter() - started
        landed_at = served_at = None
        seen: set[Path] = set()
        while time.perf_counter() - started < timeout:
            if landed_at is None and landed_file_with(landing, message_id, seen):
                landed_at = time.perf_counter() - started
            if serving_has_user(serving, user_id):
                served_at = time.perf_counter() - started
                break
            time.sleep(0.5)
        results.append(
            {"trial": trial + 1, "user_id": user_id, "acknowledged_s": round(acknowledged, 3),
             "in_landing_s": landed_at and round(landed_at, 1), "in_serving_copy_s": served_at and round(served_at, 1)}
        )  # fmt: skip
        print(json.dumps(results[-1]))
    return results


# -- entry point --------------------------------------------------------------------------------------------------


def table(report: dict[str, object]) -> str:
    lines = [
        f"{'target':<13} {'batch':>5} {'events/s':>10} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    ]
    for run in report["runs"]:
        lines.append(
            f"{run['target']:<13} {run['batch_size']:>5} {run['events_per_s']:>10,} {run['requests_per_s']:>10,.1f} "
            f"{run['p50_ms']:>8} {run['p99_ms']:>8} {run['errors']:>6}"
        )
    for target, ratios in report["over_baseline_events_per_s"].items():
        lines.append(f"{target} / baseline events/s: " + ", ".join(f"batch {k}: {v}" for k, v in ratios.items()))
    return "\n".join(lines)


def cpu_probe_seconds() -> float:
    """Seconds this process takes to sum 10**8 integers: how fast the machine is right now."""
    started = time.perf_counter()
    sum(range(10**8))
    return round(time.perf_counter() - started, 2)


def main(argv: list[str] | None = None) -> int:
    """Run the throughput benchmark (default) or the end-to-end latency probe (--e2e)."""
    parser = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per batch size and target")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections kept busy")
    parser.add_argument("--workers", type=int, default=2, help="also measure the collector with this many processes")
    parser.add_argument("--e2e", action="store_true", help="SDK call to serving copy, against a running make dev")
    parser.add_argument("--url", help="collector URL for --e2e (default from COLLECTOR_HOST/COLLECTOR_PORT)")
    parser.add_argument("--write-key", help="write key for --e2e (default: first of COLLECTOR_WRITE_KEYS, or dev)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--steady",
        type=float,
        default=0.0,
        metavar="EVENTS_PER_S",
        help="for --e2e: trials while an app keeps sending this many events a second",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each --e2e event")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    machine = {
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),  # other work on the machine skews the figures
        # a fixed pure-Python loop: on a shared virtual machine the same work takes 2.7-4.4 s from hour to hour
        "cpu_probe_s_at_start": cpu_probe_seconds(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    if args.e2e:
        from settings import parse_write_keys

        host = os.environ.get("COLLECTOR_HOST", "127.0.0.1")
        url = args.url or f"http://{host}:{os.environ.get('COLLECTOR_PORT', '8090')}"
        key = args.write_key or next(iter(parse_write_keys(os.environ.get("COLLECTOR_WRITE_KEYS"))))
        data_dir = Path(os.environ.get("DATA_DIR", "data")).resolve()
        report = end_to_end(url, key, data_dir, args.trials, args.timeout, args.steady)
        entry = "end_to_end_steady" if args.steady else "end_to_end"
        previous[entry] = {"measured_at": measured_at, "machine": machine, **report}
        print(f"SDK call -> serving copy: median {report['median_s']} s, max {report['max_s']} s, "
              f"missed {report['missed']} of {args.trials}")  # fmt: skip
    else:
        report = throughput(args.seconds, args.concurrency, args.workers)
        previous["throughput"] = {
            "measured_at": measured_at,
            "machine": machine,
            "seconds_per_run": args.seconds,
            "concurrency": args.concurrency,
            "workers": args.workers,
            **report,
        }
        print(table(report))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
