"""Ingestion against DuckDB's own readers, on the same landing files in the same run.

Two children, each timed on its own (wall, CPU and peak memory from /usr/bin/time): `ingest_landing` into a fresh
warehouse (bounded readers, validation, reasons, per-file reconciliation, deduplication), and DuckDB's plain
`read_json` / `read_csv` / `read_parquet` of the same files into one table each (no validation, no line numbers,
bad lines dropped). Usage: python -m bench.ingest LANDING_DIR WORK_DIR
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.timing import timed

PLAIN_READ = """
import sys, duckdb
landing, database = sys.argv[1], sys.argv[2]
con = duckdb.connect(database)
def files(*patterns):
    import glob
    return sorted(p for pattern in patterns for p in glob.glob(f"{landing}/**/{pattern}", recursive=True))
rows = 0
for table, reader, paths in (
    ("lines", "read_json(?, format='newline_delimited', ignore_errors=true, union_by_name=true)",
     files("*.jsonl", "*.jsonl.gz", "*.ndjson", "*.json")),
    ("delimited", "read_csv(?, all_varchar=true, ignore_errors=true, union_by_name=true)", files("*.csv", "*.csv.gz")),
    ("columnar", "read_parquet(?, union_by_name=true)", files("*.parquet")),
):
    if paths:
        con.execute(f"create table {table} as select * from {reader}", [paths])
        rows += con.execute(f"select count(*) from {table}").fetchone()[0]
print(rows)
"""

INGEST = """
import sys
from pathlib import Path
from ingestion import IngestSettings, ingest_landing
summary = ingest_landing(IngestSettings(data_dir=Path(sys.argv[1]), settle_seconds=0))
assert all(result.reconciles for result in summary.files)
print(summary.rows_in)
"""


def child_rows(command: list[str]) -> dict[str, object]:
    """Wall, CPU seconds and peak MB of one child process; its last stdout line as `rows`."""
    figures = timed(command)
    output = str(figures.pop("stdout"))
    return {**figures, "rows": int(output.splitlines()[-1])}


def measure(landing: Path, work: Path) -> dict[str, object]:
    """Ingestion and the plain DuckDB read of the files under `landing`, with rows/s and their ratio."""
    shutil.rmtree(work, ignore_errors=True)
    data_dir = work / "data"
    shutil.copytree(landing, data_dir / "landing")
    python = sys.executable
    plain = child_rows([python, "-c", PLAIN_READ, str(landing), str(work / "plain.duckdb")])
    ours = child_rows([python, "-c", INGEST, str(data_dir)])
    for figures in (plain, ours):
        figures["rows_per_second"] = round(figures["rows"] / figures["seconds"])
    shutil.rmtree(work, ignore_errors=True)
    return {
        "files": sum(1 for path in landing.rglob("*") if path.is_file()),
        "ingestion": ours,
        "duckdb_plain_read": plain,
        "ingestion_over_plain_read": round(ours["rows_per_second"] / plain["rows_per_second"], 2),
    }


if __name__ == "__main__":
    figures = measure(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(figures, indent=2))
