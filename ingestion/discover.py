"""Which landing files are ready to load: complete, supported, and not loaded before."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IN_PROGRESS_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True)
class LandingFile:
    """A file in the landing folder, named relative to it."""

    path: Path
    name: str
    size: int
    mtime: float


def is_in_progress(path: Path, landing_dir: Path, settle_seconds: float, now: float) -> bool:
    """True for a file still being written: hidden, .tmp/.part, or modified within `settle_seconds`."""
    relative = path.relative_to(landing_dir)
    if any(part.startswith(".") for part in relative.parts):
        return True
    if path.name.lower().endswith(IN_PROGRESS_SUFFIXES):
        return True
    return now - path.stat().st_mtime < settle_seconds


def settled_files(landing_dir: Path, settle_seconds: float, now: float | None = None) -> Iterator[LandingFile]:
    """Complete files under the landing folder in name order (names sort by arrival for our writers)."""
    if not landing_dir.exists():
        return
    now = time.time() if now is None else now
    for path in sorted(p for p in landing_dir.rglob("*") if p.is_file()):
        if is_in_progress(path, landing_dir, settle_seconds, now):
            continue
        stat = path.stat()
        yield LandingFile(path, path.relative_to(landing_dir).as_posix(), stat.st_size, stat.st_mtime)


def count_waiting(landing_dir: Path, settle_seconds: float, now: float | None = None) -> int:
    """Files that exist but are not settled yet (they wait for the next run)."""
    if not landing_dir.exists():
        return 0
    now = time.time() if now is None else now
    return sum(1 for p in landing_dir.rglob("*") if p.is_file() and is_in_progress(p, landing_dir, settle_seconds, now))


def latest_arrival(landing_dir: Path) -> float | None:
    """When the newest file in the landing folder arrived, settled or not (None when empty).

    A file renamed into place keeps the modification time of its last write; the rename sets its change time.
    """
    if not landing_dir.exists():
        return None
    stats = [p.stat() for p in landing_dir.rglob("*") if p.is_file()]
    return max((max(s.st_mtime, s.st_ctime) for s in stats), default=None)


def sha256_of(path: Path, chunk_bytes: int = 4 << 20) -> str:
    """Hex SHA-256 of the file's bytes as stored (compressed files hash compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
