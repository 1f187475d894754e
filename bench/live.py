"""The live path's targets, measured in one run on this machine (docs/live.md, issue targets):

- SDK call to live profile updated (live/definitions.yml's segments and triggers): a client posts 2,000 events/s
  to the real collector (`python -m collector`) for --seconds; the live consumer (`python -m live consume`) tails
  the spool into a real redis-server. One event per
  request is a probe for a new user: the latency is from just before its POST to the moment its profile key exists
  (polled every 2 ms). p50/p95/p99/max, and the rate reached.
- Profile API: `python -m live api` asked for random profiles at 1,000 requests/s for half of --seconds, by `wrk`
  (Debian's package: C, 10 keep-alive connections, each pausing after every answer so that together they ask about
  the rate; the rate reached is reported) or, without wrk, by 16 paced Python client threads. Latency p50/p99 from
  the client (client and server share this machine's 2 cores). Then the same for recommendations of the demo's users.
- Cart-abandonment trigger: a consumer restarted with `after: 5s`, a product added, no order: the delay of the
  signed POST at a local webhook after the 5 s, over 5 carts.
- Redis memory per million users, from used_memory before and after the load (the load's users and events per user
  are stated with it).
- Recommendations: precision@10 of the champion recommendation model against the popularity baseline on the
  demo, as `make demo` trains it (the real pipeline, clusters as cold-start segments), read from its MLflow run.

The demo is built first with `make demo` in a temporary DATA_DIR (about 2.5 minutes), or given with --demo-dir; the
live path then runs over it, so the profile API serves the demo's batch traits and recommendations.

    python -m bench.live [--seconds 30] [--rate 2000] [--api-rate 1000] [--demo-dir DIR]

Figures go to bench/results/live.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bench"
API_KEY = "bench-reader"
DEFINITIONS = """
segments:
  - name: hot_cart
    all:
      - {event: product_viewed, window: 10m}
      - {event: product_added, window: 10m}
triggers:
  - {name: abandoned, kind: cart_abandoned, after: 5s}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up in {timeout} s")


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000
    return {
        "count": len(values),
        "p50_ms": round(float(np.percentile(array, 50)), 1),
        "p95_ms": round(float(np.percentile(array, 95)), 1),
        "p99_ms": round(float(np.percentile(array, 99)), 1),
        "max_ms": round(float(array.max()), 1),
    }


class Webhook:
    """A local endpoint recording when each POST arrived, by delivery key."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.arrivals.setdefault(body["user_id"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class ProbePoller:
    """Watches for probe users' profile keys: `add(name)` when the probe is sent, `latencies` when each appeared."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pending: dict[str, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stopped_at: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, name: str) -> None:
        with self.lock:
            self.pending[name] = time.time()

    def _run(self) -> None:
        while self.stopped_at is None or (self.pending and time.time() - self.stopped_at < 10):
            with self.lock:
                names = list(self.pending)
            if names:
                pipeline = self.redis.pipeline(transaction=False)
                for name in names:
                    pipeline.exists(f"{PREFIX}:s:{name}")
                now = time.time()
                for name, found in zip(names, pipeline.execute(), strict=True):
                    if found:
                        with self.lock:
                            self.latencies.append(now - self.pending.pop(name))
            time.sleep(0.002)

    def finish(self) -> None:
        self.stopped_at = time.time()
        self.thread.join(timeout=30)


def sdk_to_profile(collector: str, redis: Redis, seconds: float, rate: int) -> dict[str, object]:
    """Post `rate` events/s for `seconds`; probe latencies from POST to the probe user's profile in Redis."""
    ticks_per_second = 20
    per_tick = rate // ticks_per_second
    poller = ProbePoller(redis)
    rng = random.Random(7)
    sent = 0
    started = time.time()
    with httpx.Client(auth=("dev", ""), timeout=10) as client:
        tick = 0
        while time.time() - started < seconds:
            batch = []
            for _ in range(per_tick - 1):
                user = f"u{rng.randrange(20_000)}"
                name = rng.choice(("Product Viewed", "Product Added", "Page Viewed"))
                batch.append({"type": "track", "event": name, "userId": user,
                              "properties": {"product_id": f"p{rng.randrange(200)}", "price": 9.5}})  # fmt: skip
            probe = f"probe-{tick}"
            batch.append({"type": "track", "event": "Product Viewed", "userId": probe})
            poller.add(probe)
            client.post(collector + "/v1/batch", json={"batch": batch}).raise_for_status()
            sent += len(batch)
            tick += 1
            pause = started + tick / ticks_per_second - time.time()
            if pause > 0:
                time.sleep(pause)
    elapsed = time.time() - started
    poller.finish()
    return {"events_sent": sent, "seconds": round(elapsed, 1), "events_per_second": round(sent / elapsed),
            "unmatched_probes": len(poller.pending), **percentiles(poller.latencies)}  # fmt: skip


def api_load(api: str, users: list[str], seconds: float, rate: int, threads: int = 16) -> dict[str, object]:
    """`rate` requests/s of random profiles for `seconds`, from `threads` keep-alive clients each on its own pace
    (a request not sent on time is sent at once: a slow server shows as latency, not as a lower rate)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    started = time.perf_counter() + 0.5

    def client(index: int) -> None:
        rng = random.Random(index)
        interval = threads / rate
        with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as session:
            n = 0
            while (due := started + index / rate + n * interval) < started + seconds:
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                began = time.perf_counter()
                response = session.get(f"{api}/v1/profiles/{rng.choice(users)}")
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                n += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = time.perf_counter() - started
    return {"requests": len(latencies), "requests_per_second": round(len(latencies) / total), "statuses": statuses,
            "client_threads": threads, **percentiles(latencies)}  # fmt: skip


def cart_triggers(collector: str, hook: Webhook, carts: int = 5) -> dict[str, object]:
    sent: dict[str, float] = {}
    with httpx.Client(auth=("dev", ""), timeout=10) as client:
        for n in range(carts):
            user = f"cart-{n}"
            sent[user] = time.time()
            client.post(collector + "/v1/track", json={"event": "Product Added", "userId": user,
                                                       "properties": {"product_id": "p1", "price": 20}})  # fmt: skip
            time.sleep(0.5)
    deadline = time.time() + 30
    while len([u for u in sent if u in hook.arrivals]) < carts and time.time() < deadline:
        time.sleep(0.05)
    delays = [hook.arrivals[u] - sent[u] - 5.0 for u in sent if u in hook.arrivals]
    return {"carts": carts, "delivered": len(delays), "wait_seconds": 5,
            "delay_after_wait_seconds": [round(d, 2) for d in delays],
            "max_delay_after_wait_seconds": round(max(delays), 2) if delays else None}  # fmt: skip


def build_demo(folder: Path) -> None:
    """`make demo` into `folder` (the real pipeline: ingestion, dbt, the models in MLflow, the serving copy)."""
    print(f"building the demo in {folder} (make demo) ...", flush=True)
    started = time.time()
    subprocess.run(["make", "-s", "demo", f"DATA_DIR={folder}"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"  demo built in {time.time() - started:.0f} s", flush=True)


def recommendation_lift(demo: Path) -> dict[str, object]:
    """The recommendation champion's holdout figures from its MLflow run in the demo's store."""
    from mlflow.tracking import MlflowClient

    from ml.settings import RECOMMENDATION_MODEL

    store = f"sqlite:///{demo / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version_by_alias(RECOMMENDATION_MODEL, "champion")
    metrics = client.get_run(version.run_id).data.metrics
    wanted = ("holdout_precision_at_10", "baseline_precision_at_10", "holdout_recall_at_10", "baseline_recall_at_10",
              "holdout_coverage", "baseline_coverage", "cold_start_precision_at_10",
              "cold_start_baseline_precision_at_10", "test_users",
              "cold_start_test_users", "products")  # fmt: skip
    figures = {name: round(metrics[name], 4) for name in wanted if name in metrics}
    return {
        "model_version": version.version,
        **figures,
        "precision_ratio": round(metrics["holdout_precision_at_10"] / metrics["baseline_precision_at_10"], 2),
    }


def demo_user_ids(demo: Path) -> list[str]:
    """Every user the demo's serving copy has recommendations for."""
    import duckdb

    with duckdb.connect(str(demo / "serving.duckdb"), read_only=True) as con:
        rows = con.execute("select distinct user_id from ml.recommendations order by 1").fetchall()
    return [user for (user,) in rows]


def wrk_load(base: str, paths: list[str], seconds: float, rate: int, connections: int = 10) -> dict[str, object]:
    """`wrk` asking for random `paths` at about `rate` requests/s: each connection pauses after every answer, for
    the gap that makes `connections` of them ask `rate` a second (less the answer time, measured in a 3 s run)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("PATHS", ",".join(json.dumps(path) for path in paths)))
    try:
        pause = connections * 1000 / rate
        calibration = _wrk(base, script.name, 3, connections, pause)
        pause = max(pause - calibration["mean_ms"], 0.0)
        figures = _wrk(base, script.name, seconds, connections, pause)
    finally:
        os.unlink(script.name)
    return {"tool": "wrk", "connections": connections, "pause_ms": round(pause, 2), **figures}


WRK_SCRIPT = """
local paths = {PATHS}
local pause = tonumber(os.getenv("WRK_PAUSE_MS"))
math.randomseed(7)
request = function()
  return wrk.format("GET", paths[math.random(1, #paths)], {["Authorization"] = "Bearer API_KEY"})
end
delay = function() return pause end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f %.3f %.3f\\n", summary.requests, summary.duration,
    errors.status + errors.connect + errors.read + errors.write + errors.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
""".replace("API_KEY", API_KEY)


def _wrk(base: str, script: str, seconds: float, connections: int, pause_ms: float) -> dict[str, float]:
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "-s", script, base],
        env={**os.environ, "WRK_PAUSE_MS": f"{pause_ms:.3f}"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    requests, micros, errors, mean, p50, p95, p99, top = line.split()[1:]
    return {"requests": int(requests), "requests_per_second": round(int(requests) / (int(micros) / 1e6)),
            "errors": int(errors), "mean_ms": float(mean), "p50_ms": float(p50), "p95_ms": float(p95),
            "p99_ms": float(p99), "max_ms": float(top)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--api-rate", type=int, default=1000)
    parser.add_argument("--demo-dir", type=Path, help="a DATA_DIR `make demo` has built (default: build one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "live.json")
    args = parser.parse_args(argv)
    redis_binary = shutil.which("redis-server")
    if not redis_binary:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        data = args.demo_dir.resolve() if args.demo_dir else Path(folder) / "demo"
        if not args.demo_dir:
            build_demo(data)
        lift = recommendation_lift(data)
        print(f"  recommendations: {lift}", flush=True)
        # the live processes get a DATA_DIR of their own holding only the demo's serving copy (what the consumer loads
        # the batch traits from): the load's events, spool and Redis files never enter the demo's DATA_DIR
        live_dir = Path(folder) / "live"
        live_dir.mkdir()
        (live_dir / "serving.duckdb").symlink_to((data / "serving.duckdb").resolve())
        redis_dir = live_dir / "redis"
        redis_dir.mkdir()
        definitions = live_dir / "live.yml"
        definitions.write_text(DEFINITIONS)
        hook = Webhook()
        redis_port, collector_port, api_port = free_port(), free_port(), free_port()
        env = {
            **os.environ, "DATA_DIR": str(live_dir), "LIVE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "LIVE_KEY_PREFIX": PREFIX, "COLLECTOR_PORT": str(collector_port), "LIVE_API_PORT": str(api_port),
            "LIVE_API_KEYS": f"{API_KEY}:bench",
        }  # fmt: skip
        # the trigger phase: a consumer with a 5-second cart_abandoned trigger and the local webhook
        trigger_env = {**env, "LIVE_DEFINITIONS_FILE": str(definitions), "ACTIVATION_WEBHOOK_URL": hook.url,
                       "ACTIVATION_WEBHOOK_SECRET": "bench-secret"}  # fmt: skip
        try:
            processes.append(subprocess.Popen([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                               "--save", "", "--appendonly", "yes", "--dir", str(redis_dir)],
                                              stdout=subprocess.DEVNULL))  # fmt: skip
            redis = Redis.from_url(env["LIVE_REDIS_URL"])
            wait_for(redis.ping, 10, "redis-server")
            baseline_memory = redis.info("memory")["used_memory"]
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            processes.append(subprocess.Popen([sys.executable, "-m", "collector"], cwd=ROOT, env=env, **quiet))
            consumer = subprocess.Popen([sys.executable, "-m", "live", "consume"], cwd=ROOT, env=env, **quiet)
            processes.append(consumer)
            processes.append(subprocess.Popen([sys.executable, "-m", "live", "api"], cwd=ROOT, env=env, **quiet))
            collector = f"http://127.0.0.1:{collector_port}"
            api = f"http://127.0.0.1:{api_port}"
            wait_for(lambda: httpx.get(collector + "/health").status_code == 200, 20, "collector")
            wait_for(lambda: httpx.get(api + "/health").status_code == 200, 20, "profile API")
            # the consumer loads the demo's batch traits (and recommendations) from its serving copy when it starts
            wait_for(lambda: redis.exists(f"{PREFIX}:traits_version"), 60, "the demo's traits in Redis")
            with_traits = redis.info("memory")["used_memory"]
            traits = {"users": sum(1 for _ in redis.scan_iter(match=f"{PREFIX}:t:*", count=5000)),
                      "used_bytes": with_traits - baseline_memory}  # fmt: skip
            traits["mb_per_million_users"] = round(traits["used_bytes"] / traits["users"] * 1_000_000 / 2**20)
            print(f"  batch traits and recommendations in redis: {traits}", flush=True)
            print(f"posting {args.rate} events/s for {args.seconds:.0f} s ...", flush=True)
            ingest = sdk_to_profile(collector, redis, args.seconds, args.rate)
            print(f"  SDK to profile: {ingest}", flush=True)
            time.sleep(2)
            # the users the load gave a live profile (the API is asked for known users only)
            users = sorted(key.decode().split(":", 2)[2] for key in redis.scan_iter(match=f"{PREFIX}:s:u*", count=5000))
            touched = sum(1 for _ in redis.scan_iter(match=f"{PREFIX}:s:*", count=5000))
            used = redis.info("memory")["used_memory"] - with_traits
            memory = {"users": touched, "events": ingest["events_sent"], "used_bytes": used,
                      "mb_per_million_users": round(used / touched * 1_000_000 / 2**20)}  # fmt: skip
            print(f"  redis memory: {memory}", flush=True)
            if shutil.which("wrk"):
                profile_paths = [f"/v1/profiles/{user}" for user in users]
                api_figures = wrk_load(api, profile_paths, args.seconds / 2, args.api_rate)
                demo_users = demo_user_ids(data)
                recommendation_paths = [f"/v1/recommendations/{user}?n=10" for user in demo_users]
                recommendation_figures = wrk_load(api, recommendation_paths, args.seconds / 2, args.api_rate)
            else:
                print("  wrk is not installed (apt-get install wrk): paced Python clients instead", flush=True)
                api_figures = api_load(api, users, args.seconds / 2, args.api_rate)
                recommendation_figures = None
            print(f"  profile API: {api_figures}", flush=True)
            print(f"  recommendations API: {recommendation_figures}", flush=True)
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=30)
            processes.append(
                subprocess.Popen([sys.executable, "-m", "live", "consume"], cwd=ROOT, env=trigger_env, **quiet)
            )
            time.sleep(3)
            trigger = cart_triggers(collector, hook)
            print(f"  cart trigger: {trigger}", flush=True)
        finally:
            for process in reversed(processes):
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sdk_to_live_profile": ingest, "redis_memory": memory, "redis_memory_batch_traits": traits,
        "profile_api": api_figures,
        "recommendations_api": recommendation_figures, "cart_abandoned_trigger": trigger, "recommendations": lift,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
