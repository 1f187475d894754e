"""A subject's traces outside the warehouse: activation export files, Great Expectations results and Data Docs
pages, MLflow training-data artifacts, and collector spool files.

MLflow: a training run's `data/training_features.parquet` is rewritten without the subject's rows, and the run is
tagged `privacy.erased_rows` (rows removed, summed over erasures) and `privacy.trained_on_erased_data=true`, as is
every registered model version made from it. Models are not retrained: a fitted model keeps parameters (cluster
centres, coefficients), not rows, and the next scheduled training leaves the erased users out.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from settings import CollectorSettings, MLSettings
from stores.files import fsync_dir

TRAINING_DATA = "training_features.parquet"
MAX_SCANNED_FILE_BYTES = 256 << 20  # a GX result or Data Docs page larger than this is removed unread


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.erase-{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


def erase_activation_exports(export_dir: Path, ids: Iterable[str]) -> dict[str, int]:
    """Audience export files (`<audience>/<stamp>.jsonl`) rewritten without entries of the subject; returns rows
    removed per file (relative to export_dir)."""
    wanted = set(ids)
    removed: dict[str, int] = {}
    if not export_dir.is_dir():
        return removed
    for path in sorted(export_dir.glob("*/*.jsonl")):
        kept: list[bytes] = []
        dropped = 0
        with path.open("rb") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    kept.append(line)
                    continue
                if isinstance(entry, dict) and entry.get("user_id") in wanted:
                    dropped += 1
                else:
                    kept.append(line)
        if dropped:
            _atomic_write(path, b"".join(kept))
            removed[path.relative_to(export_dir).as_posix()] = dropped
    return removed


def _names_any(path: Path, needles: list[bytes]) -> bool:
    if path.stat().st_size > MAX_SCANNED_FILE_BYTES:
        return True
    data = path.read_bytes()
    return any(needle in data for needle in needles)


def _quoted(ids: Iterable[str]) -> list[bytes]:
    """How an id appears in JSON and in HTML (GX escapes quotes in Data Docs)."""
    needles = []
    for value in ids:
        needles += [json.dumps(value).encode(), f"&#34;{value}&#34;".encode(), f"&quot;{value}&quot;".encode()]
        needles.append(f"'{value}'".encode())
    return needles


def erase_gx_results(data_dir: Path, ids: Iterable[str]) -> list[str]:
    """Validation results and Data Docs pages under gx/uncommitted that name an id: removed (a result is a record
    of one validation; the next validation writes a new one). Returns the paths removed, relative to data_dir."""
    root = data_dir / "gx" / "uncommitted"
    needles = _quoted(ids)
    removed: list[str] = []
    for folder in (root / "validations", root / "data_docs" / "local_site" / "validations"):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            if _names_any(path, needles):
                path.unlink()
                removed.append(path.relative_to(data_dir).as_posix())
    return removed


def erase_training_data(settings: MLSettings, ids: Iterable[str]) -> dict[str, int]:
    """The subject's rows out of every run's training_features.parquet; returns rows removed per run id."""
    wanted = sorted(set(ids))
    removed: dict[str, int] = {}
    root = settings.artifact_root
    if not root.is_dir():
        return removed
    for path in sorted(root.rglob(TRAINING_DATA)):
        table = pq.read_table(path)
        if "user_id" not in table.column_names:
            continue
        mask = pc.is_in(table["user_id"].cast("string"), value_set=_string_array(wanted))
        dropped = pc.sum(mask).as_py() or 0
        if not dropped:
            continue
        kept = table.filter(pc.invert(pc.fill_null(mask, False)))
        temporary = path.with_name(f".{path.name}.erase-{os.getpid()}.tmp")
        pq.write_table(kept, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_dir(path.parent)
        removed[_run_id(path, root)] = dropped
    return removed


def _string_array(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _run_id(path: Path, root: Path) -> str:
    """mlartifacts/<experiment>/<run id>/artifacts/...: the run id."""
    parts = path.relative_to(root).parts
    return parts[1] if len(parts) > 2 else path.parent.name


def tag_runs(settings: MLSettings, removed: dict[str, int]) -> int:
    """Tag each run (and the model versions made from it) as trained on erased data; returns versions tagged."""
    if not removed:
        return 0
    from ml import settings as ml_settings
    from ml.tracking import client

    versions = 0
    with ml_settings.using(settings):
        mlflow = client()
        for run_id, rows in removed.items():
            run = mlflow.get_run(run_id)
            before = int(run.data.tags.get("privacy.erased_rows", "0") or 0)
            mlflow.set_tag(run_id, "privacy.erased_rows", str(before + rows))
            mlflow.set_tag(run_id, "privacy.trained_on_erased_data", "true")
            for version in mlflow.search_model_versions(f"run_id = '{run_id}'"):
                mlflow.set_model_version_tag(version.name, version.version, "privacy.trained_on_erased_data", "true")
                versions += 1
    return versions


def settle_spool(settings: CollectorSettings, ids: Iterable[str], wait_seconds: float | None = None) -> dict[str, int]:
    """Collector spool files naming an id moved into the landing folder, where the landing step erases them: those
    of dead processes at once (as a collector start would), those of live ones by waiting for their rotation (every
    COLLECTOR_ROTATE_SECONDS). Returns counts: landed, waited_for, still_open (not rotated in time)."""
    from collector.spool import Spool

    root = settings.spool_root
    counts = {"landed": 0, "waited_for": 0, "still_open": 0}
    if not root.is_dir():
        return counts
    counts["landed"] = len(Spool(root, settings.landing_dir, settings.rotate_events).recover())
    needles = _quoted(ids)
    open_files = [p for p in root.glob("*/*.jsonl") if p.is_file() and _names_any(p, needles)]
    counts["waited_for"] = len(open_files)
    deadline = time.monotonic() + (wait_seconds if wait_seconds is not None else 2 * settings.rotate_seconds + 2)
    while open_files and time.monotonic() < deadline:
        time.sleep(0.2)
        open_files = [p for p in open_files if p.exists()]
    counts["still_open"] = len(open_files)
    return counts
