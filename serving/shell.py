"""`make sql`: a small DuckDB SQL shell on the serving copy, read-only, reopened per statement.

Each statement opens the current serving copy ($DATA_DIR/serving.duckdb, a symlink into the latest publish's
version folder), so a publish between two statements is seen at once and the shell never holds a file open while
idle. `.tables` lists tables, `.quit` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import duckdb

from settings import load as load_settings

with contextlib.suppress(ImportError):  # line editing and history for input(), where the platform has it
    import readline  # noqa: F401

TABLES_SQL = (
    "select schema_name as schema, table_name as table, estimated_size as rows from duckdb_tables() "
    "where schema_name <> 'meta' order by 1, 2"
)


def serving_path() -> Path:
    return load_settings().data_dir / "serving.duckdb"


def run(statement: str, path: Path) -> str:
    """Run one statement on a fresh read-only connection and return its printed result."""
    with duckdb.connect(str(path), read_only=True) as con:
        relation = con.sql(statement)
        return "" if relation is None else str(relation)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = serving_path()
    if not path.exists():
        print(f"No serving copy at {path} yet: run `make demo` or `make run` first.", file=sys.stderr)
        return 1
    if args:  # one-shot: make sql Q="select ..."
        print(run(" ".join(args), path))
        return 0
    print(f"Serving copy {path} (read-only). End statements with ';'. .tables lists tables, .quit leaves.")
    buffer: list[str] = []
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except EOFError:
            print()
            return 0
        stripped = line.strip()
        if not buffer and stripped in (".quit", ".exit"):
            return 0
        if not buffer and stripped == ".tables":
            print(run(TABLES_SQL, path))
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            try:
                print(run("\n".join(buffer), path))
            except duckdb.Error as error:
                print(f"Error: {error}")
            buffer = []


if __name__ == "__main__":
    sys.exit(main())
