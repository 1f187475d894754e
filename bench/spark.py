"""`python -m bench.spark`: the full build on Spark (local mode, this machine) beside the same build on DuckDB.

Generates `--events` demo events once, copies the landing folder into two DATA_DIRs and runs the
`materialize_everything` job in its own process with DBT_TARGET=duckdb and then DBT_TARGET=spark (the manifest parsed
for each first, as `make run` does), measuring wall and CPU seconds and peak RSS (bench/timing.py, the JVM included)
and profiling the steps from the event log. Also the calibration figure. Prints a table with Spark's time as a ratio
to DuckDB's and writes bench/results/spark.json. Spark is expected to be slower on one machine: the point is that the
same project runs there unchanged and scales out; docs/spark.md gives the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bench.calibration import calibrate
from bench.profile import run_profile
from bench.timing import timed
from demo_events import GeneratorConfig, generate, users_for_events

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
JOB = [str(BIN / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", "materialize_everything"]


def build(target: str, data_dir: Path, landing: Path) -> dict[str, object]:
    """The full job on `target` in a fresh DATA_DIR holding a copy of `landing`."""
    shutil.rmtree(data_dir, ignore_errors=True)
    (data_dir / "dagster_home").mkdir(parents=True)
    shutil.copy(ROOT.parent / "orchestration" / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
    shutil.copytree(landing, data_dir / "landing")
    env = {**os.environ, "DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home"),
           "SETTLE_SECONDS": "0", "DBT_TARGET": target}  # fmt: skip
    subprocess.run(["make", "-s", "manifest", f"DBT_TARGET={target}"], cwd=ROOT.parent, env=env, check=True)
    figures = timed(JOB, env)
    profile = run_profile(env["DAGSTER_HOME"], "materialize_everything")
    # a run can succeed with steps skipped (an output its upstream step did not yield): not a full build
    incomplete = [step["step"] for step in profile["steps"] if step["status"] != "SUCCESS"]
    if incomplete:
        raise SystemExit(f"{target}: the job did not run every step ({', '.join(incomplete)}): no figures")
    return {
        "seconds": figures["seconds"],
        "cpu_seconds": figures.get("cpu_seconds"),
        "peak_mb": figures["peak_mb"],
        "profile": profile,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-spark"))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "spark.json")
    args = parser.parse_args(argv)
    calibration = calibrate()
    shutil.rmtree(args.work, ignore_errors=True)
    config = GeneratorConfig(users=1, seed=42)
    config = replace(config, users=users_for_events(config, args.events))
    generate(config, args.work / "generated")
    landing = args.work / "generated" / "landing"
    results = {"events": args.events, "cpus": os.cpu_count(), "calibration": calibration}
    try:
        for target in ("duckdb", "spark"):
            print(f"{target}: building {args.events:,} events ...", flush=True)
            results[target] = build(target, args.work / target, landing)
            print(f"{target}: {results[target]['seconds']} s, peak {results[target]['peak_mb']} MB", flush=True)
    finally:
        # leave the manifest for the default engine, as a fresh checkout has it
        subprocess.run(["make", "-s", "manifest", "DBT_TARGET=duckdb"], cwd=ROOT.parent, check=False)
    results["spark_to_duckdb"] = round(results["spark"]["seconds"] / results["duckdb"]["seconds"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\n{'engine':8} {'seconds':>9} {'/ calibration':>14} {'peak MB':>9}")
    unit = calibration["weekly_retention_query_s"]
    for target in ("duckdb", "spark"):
        row = results[target]
        print(f"{target:8} {row['seconds']:>9} {row['seconds'] / unit:>14.0f} {row['peak_mb']:>9}")
    print(f"Spark / DuckDB: {results['spark_to_duckdb']}x; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
