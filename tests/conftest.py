"""Shared fixtures: a fresh DATA_DIR per test and helpers to drop files into its landing folder."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import orjson
import pytest

from ingestion import IngestSettings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    (root / "landing").mkdir(parents=True)
    monkeypatch.setenv("DATA_DIR", str(root))
    return root


@pytest.fixture
def settings(data_dir: Path) -> IngestSettings:
    return IngestSettings(data_dir=data_dir)


def settle(path: Path, seconds_ago: float = 60) -> Path:
    """Give a file a modification time old enough to count as completely written."""
    past = time.time() - seconds_ago
    os.utime(path, (past, past))
    return path


def write_lines(path: Path, lines: Iterable[str | bytes | dict], *, compress: bool = False) -> Path:
    """Write JSON lines (dicts are serialised, str/bytes written as given) and settle the file."""
    payload = b"".join(
        (orjson.dumps(line) if isinstance(line, dict) else line.encode() if isinstance(line, str) else line) + b"\n"
        for line in lines
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return settle(path)


def query(data_dir: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def event(message_id: str, user_id: str | None = "u1", **fields: object) -> dict:
    """A valid track event; keyword arguments override or add fields (None removes one)."""
    row: dict[str, object] = {
        "message_id": message_id,
        "user_id": user_id,
        "type": "track",
        "event": "Product Viewed",
        "timestamp": "2026-01-05T10:00:00Z",
        "received_at": "2026-01-05T10:00:02Z",
    }
    row.update(fields)
    return {key: value for key, value in row.items() if value is not None}


DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


def run_dbt(data_dir: Path, *args: str, dbt_vars: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real dbt CLI on the project against `data_dir`, with build output kept out of the repo."""
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(data_dir / "dbt_target"),
        "--log-path",
        str(data_dir / "dbt_logs"),
    ]
    if dbt_vars:
        command += ["--vars", orjson.dumps(dbt_vars).decode()]
    env = {**os.environ, "DATA_DIR": str(data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    return result


def sensor_context(**kwargs: object):
    """A sensor context with the code location's resources, built from the environment as `dagster dev` would."""
    import dagster as dg

    from orchestration.defs.ml.resources import MLflowResource
    from orchestration.defs.resources import warehouse_resource
    from orchestration.settings_resources import env_fields

    resources = {"warehouse": warehouse_resource(), "mlflow": MLflowResource(**env_fields(MLflowResource))}
    return dg.build_sensor_context(resources=resources, **kwargs)


# Test files that take minutes on their own: handed out first, so that the other workers' files run beside them
# instead of after them (pytest-xdist hands out files in collection order).
LONGEST_FIRST = ("test_spark_equality.py",)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)
