"""`python -m bench.erasure [--from DATA_DIR] [--users 1,100] [--out FILE]`: what an erasure costs on a finished
warehouse.

For each count N it copies the finished `make demo` warehouse (default `data/`) and runs `python -m privacy erase`
on the copy in a child, for the N most active users. It prints the wall time, the peak RSS (ru_maxrss of the
largest process of the tree, from wait4), the seconds of each step (from the erasure ledger) and the rows taken out
of the landing files. The baseline, measured in the same run on the same copy, is one pass of ingestion's reader
and validation over every landing file (what any erasure must at least read); the ratios are against it. Figures,
not pass/fail; JSON goes to bench/results/erasure.json (--out: elsewhere, e.g. erasure_10m.json for the 10M run).

The copies share the source's MLflow artifact folder (the registry's artifact locations are absolute): the erasure
scrubs the training data of those runs there too, so point --from at a warehouse you can spare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "erasure.json"


def most_active_users(data_dir: Path, count: int) -> list[str]:
    """The `count` users with the most raw events (ties by id)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select user_id from raw.events where user_id is not null group by 1 order by count(*) desc, 1 limit ?",
            [count],
        ).fetchall()
    return [user for (user,) in rows]


def read_pass_seconds(data_dir: Path) -> float:
    """Seconds for one pass of ingestion's reader and validation over every landing file, finding nobody."""
    from privacy.identities import Subject
    from privacy.landing import subject_rows
    from settings import load

    settings = load({"DATA_DIR": str(data_dir)}).ingest
    nobody = Subject(frozenset(), frozenset())
    started = time.perf_counter()
    for path in sorted(p for p in settings.landing_dir.rglob("*") if p.is_file()):
        subject_rows(path, nobody, settings)
    return time.perf_counter() - started


def erase_in_child(data_dir: Path, users: list[str]) -> dict:
    """`python -m privacy erase` on `data_dir`; exit code, wall time, peak RSS and the ledger's finished entry."""
    env = {**os.environ, "DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home")}
    log = Path(tempfile.gettempdir()) / f"bench-erasure-{len(users)}.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "privacy", "erase", "--users", ",".join(users)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    ledger = data_dir / "privacy" / "erasure_ledger.jsonl"
    finished = [entry for entry in map(json.loads, ledger.read_text().splitlines()) if entry["event"] == "finished"]
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_seconds": round(wall, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "steps": finished[-1]["seconds"] if finished else {},
        "anonymous_ids": finished[-1]["anonymous_ids"] if finished else None,
        "landing": finished[-1]["removed"].get("landing files") if finished else None,
        "removed": finished[-1]["removed"] if finished else None,  # what each store lost
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.erasure", description=__doc__)
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "data", help="a finished DATA_DIR")
    parser.add_argument("--users", default="1,100", help="user counts to erase, comma-separated")
    parser.add_argument("--work", type=Path, default=None, help="where the copies go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args(argv)
    source = args.source.resolve()
    if not (source / "warehouse.duckdb").exists():
        print(f"error: {source} has no warehouse.duckdb; run `make demo` first", file=sys.stderr)
        return 2
    with duckdb.connect(str(source / "warehouse.duckdb"), read_only=True) as con:
        events = con.execute("select count(*) from raw.events").fetchone()[0]
    counts = [int(part) for part in args.users.split(",")]
    results: dict = {
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "source": str(source),
        "raw_events": events,
        "landing_files": sum(1 for p in (source / "landing").rglob("*") if p.is_file()),
        "cases": {},
    }
    work = Path(tempfile.mkdtemp(prefix="bench-erasure-", dir=args.work))
    try:
        for count in counts:
            copy = work / f"erase-{count}"
            print(f"copying {source} for {count} user(s) ...", flush=True)
            shutil.copytree(source, copy, symlinks=True)
            if "baseline_read_seconds" not in results:
                results["baseline_read_seconds"] = round(read_pass_seconds(copy), 1)
                print(f"baseline: one read pass over the landing files {results['baseline_read_seconds']} s")
            case = erase_in_child(copy, most_active_users(copy, count))
            case["ratio_to_read_pass"] = round(case["wall_seconds"] / results["baseline_read_seconds"], 2)
            results["cases"][str(count)] = case
            print(f"{count} user(s): {json.dumps(case)}", flush=True)
            shutil.rmtree(copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{events:,} raw events, {results['landing_files']} landing files, {results['machine']}")
    print(f"{'users':>6} {'wall s':>8} {'x read pass':>12} {'peak MiB':>9}  steps")
    for count, case in results["cases"].items():
        steps = ", ".join(f"{step} {seconds}" for step, seconds in case["steps"].items())
        figures = f"{case['wall_seconds']:>8} {case['ratio_to_read_pass']:>12} {case['peak_rss_mib']:>9}"
        print(f"{count:>6} {figures}  {steps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
