"""The only thing the dashboard reads: the serving copy, opened read-only for each query and closed at once.

$DATA_DIR/serving.duckdb is a symlink through $DATA_DIR/published/current into the version folder of the latest
publish (see serving.publish); a publish repoints `current`, and opening or stat-ing the name follows the links. So
the identity of what the name resolves to (inode, mtime, size) changes with every publish; results are cached under
that identity and a republish shows on the next page load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from settings import load as load_settings

SERVING_FILE = "serving.duckdb"


def data_dir() -> Path:
    """The setting DATA_DIR (default ./data), resolved."""
    return load_settings().data_dir


@dataclass(frozen=True)
class ServingCopy:
    """A handle on one serving copy file; holds no connection between queries."""

    path: Path

    @classmethod
    def current(cls) -> ServingCopy:
        """The serving copy under $DATA_DIR."""
        return cls(data_dir() / SERVING_FILE)

    def identity(self) -> tuple[int, int, int] | None:
        """(inode, mtime in ns, size) of the file the name resolves to (stat follows the symlinks), or None when
        there is none yet."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def query(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """Run one read-only query on a fresh connection (closed before returning) and return its rows."""
        if not self.path.exists():
            raise FileNotFoundError(f"no serving copy at {self.path}: run `make demo` or `make run` first")
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).df()

    def tables(self) -> frozenset[str]:
        """Every table of the copy as 'schema.table' (empty when there is no copy yet)."""
        if not self.path.exists():
            return frozenset()
        rows = self.query("select schema_name || '.' || table_name as name from duckdb_tables()")
        return frozenset(rows["name"])
