"""`python -m bench.hostile_run [--from DATA_DIR]`: `make run` on a finished warehouse that meets every hostile file.

Copies a finished `make demo` warehouse (default `data/`) twice. Into one copy it drops only a clean file (the
baseline); into the other the hostile files of `demo-events --hostile` (unplanned variants, a 0.5 MB gzip inflating
to one 512 MiB line, BOMs, ancient times, gzip garbage, 300-deep nesting, a symlink, a folder named like a file)
and the same clean file after them. Runs `make run` on each in a child and prints its exit code, wall time and peak
RSS (ru_maxrss of the whole process tree, from wait4), whether the clean file's user reached the serving copy, and
the hostile rows' fate. Figures, not pass/fail; JSON goes to bench/results/hostile_run.json.

The copies share the source's MLflow artifact folder (the registry's artifact locations are absolute): a run that
finds training due writes that model's artifacts there. Nothing else outside the temporary copies is written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb

from demo_events.hostile import CLEAN_FILE, HOSTILE_FOLDER, plant_hostile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "hostile_run.json"


def make_run(data_dir: Path) -> dict:
    """`make run` on `data_dir` in a child; exit code, wall time and the peak RSS of its largest process."""
    env = {**os.environ, "DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home")}
    log = Path(tempfile.gettempdir()) / f"hostile_run-{data_dir.name}.log"  # kept after the copies go
    started = time.perf_counter()
    with log.open("wb") as out:
        child = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux; the largest process of the tree
        "log": str(log),
    }


def outcome(data_dir: Path, clean_user: str) -> dict:
    """What the run left: the clean user in the serving copy, the last publish, the hostile files' rows."""
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        served = con.execute("select count(*) from marts.user_segments where user_id = ?", [clean_user]).fetchone()
        published_at = con.execute("select max(published_at)::varchar from meta.publish").fetchone()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        files = con.execute(
            "select file_name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected from raw.load_manifest "
            "where file_name like ? or file_name = ? order by 1",
            [f"{HOSTILE_FOLDER}/%", CLEAN_FILE],
        ).fetchall()
        rejected = con.execute(
            "select source_file, line_number, reason, strlen(raw_line) from raw.events_rejected "
            "where source_file like ? order by 1, 2",
            [f"{HOSTILE_FOLDER}/%"],
        ).fetchall()
    return {
        "clean_user_in_serving_copy": served[0] == 1,
        "published_at": published_at[0],
        "files": [
            {"file": f, "status": s, "rows_in": n, "loaded": ok, "duplicate": dup, "rejected": bad}
            for f, s, n, ok, dup, bad in files
        ],
        "rejected_rows": [{"at": f"{f}:{n}", "reason": r, "raw_line_bytes": size} for f, n, r, size in rejected],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_run", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "data", help="a finished warehouse")
    source = parser.parse_args().source.resolve()
    if not (source / "warehouse.duckdb").exists():
        raise SystemExit(f"{source} holds no warehouse: run `make demo` first (or pass --from)")
    with tempfile.TemporaryDirectory(prefix="hostile-run-") as tmp:
        runs = {}
        for name in ("baseline", "hostile"):
            copy = Path(tmp) / name
            print(f"copying {source} -> {copy}", flush=True)
            shutil.copytree(source, copy, symlinks=True)
            plan = plant_hostile(copy / "landing")
            if name == "baseline":  # the clean file alone
                shutil.rmtree(copy / "landing" / HOSTILE_FOLDER)
            print(f"make run on the {name} copy ...", flush=True)
            run = make_run(copy)
            runs[name] = {**run, **outcome(copy, plan.clean_user)} if run["exit_code"] == 0 else run
            if run["exit_code"] != 0:
                print(f"make run on the {name} copy exited {run['exit_code']}: see {run['log']}", flush=True)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "source": str(source),
        **runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'make run':<12}{'exit':>6}{'wall s':>9}{'peak RSS MiB':>14}  clean user served")
    for name, run in runs.items():
        served = run.get("clean_user_in_serving_copy", "-")
        print(f"{name:<12}{run['exit_code']:>6}{run['wall_seconds']:>9}{run['peak_rss_mib']:>14}  {served}")
    base, hostile = runs["baseline"], runs["hostile"]
    print(f"hostile/baseline: wall {hostile['wall_seconds'] / base['wall_seconds']:.2f}x, "
          f"peak RSS {hostile['peak_rss_mib'] / base['peak_rss_mib']:.2f}x")  # fmt: skip
    for f in hostile.get("files", []):
        print(f"  {f['file']}: {f['status']}, {f['rows_in']} in = {f['loaded']} loaded + {f['duplicate']} duplicate "
              f"+ {f['rejected']} rejected")  # fmt: skip
    for r in hostile.get("rejected_rows", []):
        print(f"  rejected {r['at']}: {r['reason']} (raw_line {r['raw_line_bytes']} bytes kept)")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
