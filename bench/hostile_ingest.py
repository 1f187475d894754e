"""`python -m bench.hostile_ingest`: what one hostile gzip file costs ingestion, beside a clean baseline.

Builds a ~0.5 MB `.jsonl.gz` that inflates to one line of 512 MiB followed by a few good lines, plus a clean file
after it, and runs `ingest_landing` with the default settings in a child process; then the clean file alone in
another child. Prints wall time and the child's peak RSS (ru_maxrss from wait4) for both, and what was loaded and
rejected. Figures, not pass/fail; JSON goes to bench/results/hostile_ingest.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo_events.hostile import huge_line_gzip

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "hostile_ingest.json"
HUGE_LINE_MIB = 512
GOOD_LINES = 5
CLEAN_LINES = 10_000

CHILD = """
import json, sys
from pathlib import Path
from ingestion import IngestSettings, ingest_landing
from stores.schema import connect
settings = IngestSettings.from_env()
summary = ingest_landing(settings)
with connect(str(settings.warehouse_path), read_only=True) as con:
    rejected = con.execute(
        "select source_file, line_number, reason, strlen(raw_line) from raw.events_rejected order by 1, 2"
    ).fetchall()
print(json.dumps({
    "files": [
        {"file": r.file_name, "status": r.status, "rows_in": r.rows_in, "loaded": r.rows_loaded,
         "duplicate": r.rows_duplicate, "rejected": r.rows_rejected, "seconds": round(r.seconds, 3)}
        for r in summary.files
    ],
    "rejected_rows": [
        {"file": f, "line": n, "reason": reason, "raw_line_bytes": size} for f, n, reason, size in rejected
    ],
}))
"""


def _event(message_id: str) -> bytes:
    return json.dumps(
        {
            "message_id": message_id,
            "user_id": "bench_user",
            "type": "track",
            "event": "Product Viewed",
            "timestamp": "2026-03-01T10:00:00Z",
            "received_at": "2026-03-01T10:00:01Z",
        }
    ).encode()


def build_hostile(path: Path) -> int:
    """The gzip file: one line of HUGE_LINE_MIB MiB, then GOOD_LINES good events; returns its size."""
    good = [json.loads(_event(f"after-huge-{i}")) for i in range(GOOD_LINES)]
    return huge_line_gzip(path, HUGE_LINE_MIB << 20, good)


def build_clean(path: Path) -> int:
    path.write_bytes(b"".join(_event(f"clean-{i}") + b"\n" for i in range(CLEAN_LINES)))
    return path.stat().st_size


def run_child(data_dir: Path) -> dict:
    """Ingest `data_dir` in a child process; its wall time, peak RSS and what it loaded."""
    env = {**os.environ, "DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0"}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, cwd=ROOT.parent)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"ingestion child failed with {child.returncode}")
    # ru_maxrss is in KiB on Linux
    return {"wall_seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), **json.loads(output)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hostile-ingest-") as tmp:
        hostile_dir, baseline_dir = Path(tmp) / "hostile", Path(tmp) / "baseline"
        for folder in (hostile_dir, baseline_dir):
            (folder / "landing").mkdir(parents=True)
        huge_bytes = build_hostile(hostile_dir / "landing" / "a_huge_line.jsonl.gz")
        clean_bytes = build_clean(hostile_dir / "landing" / "b_clean.jsonl")
        build_clean(baseline_dir / "landing" / "b_clean.jsonl")
        baseline = run_child(baseline_dir)
        hostile = run_child(hostile_dir)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "hostile_file": {
            "compressed_bytes": huge_bytes,
            "inflated_line_bytes": HUGE_LINE_MIB << 20,
            "good_lines_after": GOOD_LINES,
        },
        "clean_file": {"bytes": clean_bytes, "lines": CLEAN_LINES},
        "baseline_clean_file_alone": baseline,
        "hostile_plus_clean_file": hostile,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"hostile file: {huge_bytes / 1e6:.2f} MB gzip inflating to one {HUGE_LINE_MIB} MiB line + {GOOD_LINES} lines"
    )
    print(f"{'run':<28}{'wall s':>8}{'peak RSS MiB':>14}")
    for name, run in (("baseline (clean file)", baseline), ("hostile + clean file", hostile)):
        print(f"{name:<28}{run['wall_seconds']:>8}{run['peak_rss_mib']:>14}")
    for run in (hostile,):
        for f in run["files"]:
            print(f"  {f['file']}: {f['status']}, {f['rows_in']} in = {f['loaded']} loaded + {f['duplicate']} "
                  f"duplicate + {f['rejected']} rejected")  # fmt: skip
        for r in run["rejected_rows"]:
            print(f"  rejected {r['file']}:{r['line']}: {r['reason']} (raw_line {r['raw_line_bytes']} bytes)")
    print(f"written to {RESULTS.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
