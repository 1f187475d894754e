"""`make bench`: sizes of generated events through the pipeline, with baselines measured in the same run.

First a calibration figure for the machine (bench/calibration.py: one hand-written DuckDB query on fixed synthetic
data). Then for each size (1M and 10M events; --with-100m adds 100M): generate, then measure each job in its own
process (wall seconds and peak RSS from /usr/bin/time): the full Dagster job, a refresh after a 1% batch (the jobs
new files start: landing_refresh, then refresh_follow_up), and the weekly retention matrix as one hand-written
DuckDB query and in pandas, and a 4-step funnel's models against one hand-written DuckDB query (bench/funnels.py);
each job's steps are profiled from its event log (bench/profile.py: wall, CPU, peak
memory, rows). Ingestion alone is measured against DuckDB's plain readers on the same files (bench/ingest.py).
Then, with `dagster dev` running on that warehouse (webserver, daemon, landing sensor), the seconds from a file
landing to its user being in the published serving copy. Each size runs with DuckDB's memory bounds set within its
memory target (MEMORY_LIMITS). Results go to bench/results/latest.json and a table on stdout; every time is also
given divided by the calibration figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import orjson

from bench.calibration import calibrate
from bench.funnels import measure as measure_funnel
from bench.ingest import measure as measure_ingestion
from bench.probes import runs_in_progress, serving_has_user, wait_until_idle
from bench.profile import run_profile
from bench.profile import table as profile_table
from bench.timing import timed
from demo_events import GeneratorConfig, generate, users_for_events

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def measured(command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Wall and CPU seconds and peak RSS (MB) of one command in its own process, and the end of its output."""
    figures = timed(command, env)
    return {**figures, "stdout": str(figures["stdout"])[-200:]}


def wait_for(condition, timeout: float, every: float = 0.5) -> float | None:
    """Seconds until `condition()` holds, or None after `timeout`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(every)
    return None


def published_at(serving: Path) -> float:
    """Modification time of the serving copy (0 before the first publish); a publish renames a new file over it."""
    return serving.stat().st_mtime if serving.exists() else 0.0


def drop_probe(data_dir: Path, name: str) -> str:
    """Land a one-event file for a new user the way a producer should (written hidden, then renamed)."""
    user_id = f"bench-latency-{name}-{int(time.time())}"
    line = {
        "message_id": f"{user_id}-m", "user_id": user_id, "type": "track", "event": "Feature Used",
        "timestamp": "2026-10-31T12:00:00Z", "properties": {"feature": "latency_probe"},
    }  # fmt: skip
    staged = data_dir / "landing" / f".latency-{name}.jsonl.tmp"
    staged.write_bytes(orjson.dumps(line) + b"\n")
    staged.rename(data_dir / "landing" / f"latency-{name}-{int(time.time())}.jsonl")
    return user_id


def sensor_latency(
    data_dir: Path, env: dict[str, str], trials: int = 3, busy_trials: int = 2, timeout: float = 600
) -> dict[str, object]:
    """Seconds from a one-event file landing to its user in serving.duckdb, with `dagster dev` and the sensor up.

    The file is written under a hidden name and renamed into the landing folder, as a producer should; it then
    waits out the settle time like any other file. The first sensor tick after start-up sees every file already
    there and starts one run (ingestion loads nothing new); trials begin once that run has published, each once
    no run is queued or running. Then the busy trials: each file lands as soon as the follow-up run of the previous
    refresh has started, so the refresh it starts has to wait for the step that holds the writer.
    """
    serving = data_dir / "serving.duckdb"
    env = {**env, "SETTLE_SECONDS": os.environ.get("BENCH_SETTLE_SECONDS", "5")}
    before = published_at(serving)
    dev = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-w", str(ROOT.parent / "workspace.yaml"), "-h", "127.0.0.1", "-p", "3999"],
        env=env, cwd=ROOT.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    results, busy = [], []
    try:
        warm_up = wait_for(lambda: published_at(serving) > before, timeout)
        for trial in range(trials + busy_trials):
            if trial < trials:
                wait_until_idle(env["DAGSTER_HOME"], timeout)
            else:
                wait_for(lambda: runs_in_progress(env["DAGSTER_HOME"], "refresh_follow_up"), timeout)
                time.sleep(8)  # its run process has started and holds the writer in its first step
            user_id = drop_probe(data_dir, str(trial))
            seconds = wait_for(lambda user_id=user_id: serving_has_user(serving, user_id), timeout)
            (results if trial < trials else busy).append(None if seconds is None else round(seconds, 1))
            kind = "idle" if trial < trials else "while a follow-up runs"
            print(f"  file landed ({kind}) -> user in serving copy: {seconds and round(seconds, 1)} s", flush=True)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
    served = [r for r in results if r is not None]
    return {
        "settle_seconds": float(env["SETTLE_SECONDS"]),
        "first_run_after_start_s": warm_up and round(warm_up, 1),
        "trials_s": results,
        "median_s": sorted(served)[len(served) // 2] if served else None,
        "max_s": max(served) if served else None,
        "while_follow_up_runs_s": busy,
    }


# DuckDB's memory bounds per size, within the targets' budgets (4 GB at 10M events, 8 GB at 100M): DuckDB holds on
# to what its bound allows, so with the defaults (shares of the machine) the peak says what the machine has, not what
# the build needs. At 10M events these bounds gave a peak of 3.2 GB against 8.9 GB with the defaults, for 10% more
# time (448 vs 409 s, 2026-12-07). Sizes not listed run with the defaults.
MEMORY_LIMITS: dict[int, dict[str, str]] = {
    10_000_000: {"DBT_MEMORY_LIMIT": "3GB", "INGEST_MEMORY_LIMIT": "2GB", "SUITE_MEMORY_LIMIT": "2GB"},
    100_000_000: {"DBT_MEMORY_LIMIT": "5GB", "INGEST_MEMORY_LIMIT": "4GB", "SUITE_MEMORY_LIMIT": "3GB"},
}


def bench_size(events: int, work: Path) -> dict[str, object]:
    shutil.rmtree(work, ignore_errors=True)
    data_dir = work / "data"
    limits = MEMORY_LIMITS.get(events, {})
    env = {**os.environ, "DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home"),
           "SETTLE_SECONDS": "0", **limits}  # fmt: skip
    (data_dir / "dagster_home").mkdir(parents=True)
    shutil.copy(ROOT.parent / "orchestration" / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
    config = GeneratorConfig(users=1, seed=42)
    config = replace(config, users=users_for_events(config, events))
    started = time.perf_counter()
    truth = generate(config, data_dir)
    generate_seconds = time.perf_counter() - started
    job = [str(BIN / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", "materialize_everything"]
    ingestion = measure_ingestion(data_dir / "landing", work / "ingest")
    full = measured(job, env)
    full["profile"] = run_profile(env["DAGSTER_HOME"], "materialize_everything")
    # a 1% batch: the same generator, another seed, a hundredth of the users
    extra = replace(config, users=max(1, config.users // 100), seed=4242)
    generate(extra, work / "extra")
    for path in (work / "extra" / "landing").iterdir():
        shutil.move(str(path), data_dir / "landing" / f"extra_{path.name}")
    # what new files start with the sensor running: the landing refresh, then the run that follows it
    refresh_job = [*job[:-1], "landing_refresh"]
    follow_up_job = [*job[:-1], "refresh_follow_up"]
    landing_refresh = measured(refresh_job, env)
    landing_refresh["profile"] = run_profile(env["DAGSTER_HOME"], "landing_refresh")
    follow_up = measured(follow_up_job, env)
    follow_up["profile"] = run_profile(env["DAGSTER_HOME"], "refresh_follow_up")
    refresh = {
        "seconds": round(landing_refresh["seconds"] + follow_up["seconds"], 2),
        "peak_mb": max(landing_refresh["peak_mb"], follow_up["peak_mb"]),
        "landing_refresh": landing_refresh,
        "refresh_follow_up": follow_up,
    }
    warehouse = str(data_dir / "warehouse.duckdb")
    baseline = [str(BIN / "python"), str(ROOT / "retention_baselines.py")]
    duckdb_query = measured([*baseline, "duckdb", warehouse], env)
    pandas_matrix = measured([*baseline, "pandas", warehouse], env)
    funnel = measure_funnel(data_dir, runs=3)  # a 4-step funnel: the funnel models against one hand-written query
    latency = sensor_latency(data_dir, env)
    return {
        "events_written": truth.rows_written,
        "users": truth.users,
        "memory_limits": limits,
        "generate_seconds": round(generate_seconds, 2),
        "ingestion_against_duckdb_readers": ingestion,
        "full_build": full,
        "refresh_after_1pct_batch": refresh,
        "baseline_duckdb_weekly_retention": duckdb_query,
        "baseline_pandas_weekly_retention": pandas_matrix,
        "file_to_serving_copy_with_sensor": latency,
        "funnel_4_steps": funnel,
        "ratios": {
            "full_build_over_duckdb_query": round(full["seconds"] / duckdb_query["seconds"], 1),
            "refresh_over_full_build": round(refresh["seconds"] / full["seconds"], 2),
            "pandas_over_duckdb_query": round(pandas_matrix["seconds"] / duckdb_query["seconds"], 1),
            "ingestion_rows_per_s_over_duckdb_plain_read": ingestion["ingestion_over_plain_read"],
            "funnel_models_over_hand_written_query": funnel["ratios"]["ours_models_over_hand_written"],
        },
    }


def in_units(row: dict[str, object], calibration_s: float) -> dict[str, float]:
    """The size's main times divided by the calibration figure."""
    ingestion = row["ingestion_against_duckdb_readers"]
    times = {
        "full_build": row["full_build"]["seconds"],
        "refresh_after_1pct_batch": row["refresh_after_1pct_batch"]["seconds"],
        "ingestion": ingestion["ingestion"]["seconds"],
        "duckdb_plain_read": ingestion["duckdb_plain_read"]["seconds"],
        "baseline_duckdb_weekly_retention": row["baseline_duckdb_weekly_retention"]["seconds"],
    }
    return {name: round(seconds / calibration_s, 1) for name, seconds in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--with-100m", action="store_true", help="also 100M events (hours and tens of GB)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "latest.json")
    args = parser.parse_args(argv)
    sizes = args.sizes + ([100_000_000] if args.with_100m else [])
    calibration = calibrate()
    calibration_s = calibration["weekly_retention_query_s"]
    print(f"bench: calibration (weekly retention over 20M synthetic events) {calibration_s} s", flush=True)
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(), **calibration}}
    for size in sizes:
        print(f"bench: {size:,} events ...", flush=True)
        row = bench_size(size, ROOT / "work" / str(size))
        row["in_calibration_units"] = in_units(row, calibration_s)
        results[str(size)] = row
        refresh = row["refresh_after_1pct_batch"]
        for name, job in (("full build", row["full_build"]), ("landing_refresh", refresh["landing_refresh"]),
                          ("refresh_follow_up", refresh["refresh_follow_up"])):  # fmt: skip
            print(f"  {name}: slowest steps\n{profile_table(job['profile'], limit=10)}", flush=True)
        ingestion = row["ingestion_against_duckdb_readers"]
        print(
            f"  ingestion {ingestion['ingestion']['rows_per_second']:,} rows/s against DuckDB's plain read "
            f"{ingestion['duckdb_plain_read']['rows_per_second']:,} rows/s: {ingestion['ingestion_over_plain_read']}",
            flush=True,
        )
        print(
            f"  full build {row['full_build']['seconds']} s, {row['full_build']['peak_mb']} MB; "
            f"refresh after 1% {row['refresh_after_1pct_batch']['seconds']} s; "
            f"DuckDB query {row['baseline_duckdb_weekly_retention']['seconds']} s; "
            f"pandas {row['baseline_pandas_weekly_retention']['seconds']} s, "
            f"{row['baseline_pandas_weekly_retention']['peak_mb']} MB; "
            f"file -> serving copy {row['file_to_serving_copy_with_sensor']['trials_s']} s idle, "
            f"{row['file_to_serving_copy_with_sensor']['while_follow_up_runs_s']} s while a follow-up runs",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
