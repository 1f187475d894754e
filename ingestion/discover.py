"""Which landing files are ready to load: complete, supported, and not loaded before.

The landing folder is walked with os.scandir without following symlinks: a symlink (to a file or to a folder) is
never a landing file, and is only counted and reported; folders are walked, whatever their names look like.
Sockets, FIFOs and devices are skipped alike.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.streams import open_landing

IN_PROGRESS_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True)
class LandingFile:
    """A file in the landing folder, named relative to it."""

    path: Path
    name: str
    size: int
    mtime: float


@dataclass
class LandingScan:
    """The regular files under the landing folder (with their lstat) and what was skipped."""

    files: list[tuple[Path, os.stat_result]] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    not_regular: list[str] = field(default_factory=list)


def scan_landing(landing_dir: Path) -> LandingScan:
    """Walk the landing folder without following symlinks; files come in path order."""
    scan = LandingScan()
    if not landing_dir.is_dir() or landing_dir.is_symlink():
        return scan
    _walk(landing_dir, landing_dir, scan)
    scan.files.sort(key=lambda item: item[0].relative_to(landing_dir).parts)
    scan.symlinks.sort()
    return scan


def _walk(folder: Path, landing_dir: Path, scan: LandingScan) -> None:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed or replaced while we looked
        return
    for entry in entries:
        path = Path(entry.path)
        name = path.relative_to(landing_dir).as_posix()
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            scan.symlinks.append(name)
        elif stat.S_ISDIR(info.st_mode):
            _walk(path, landing_dir, scan)
        elif stat.S_ISREG(info.st_mode):
            scan.files.append((path, info))
        else:
            scan.not_regular.append(name)


def is_in_progress(
    path: Path, landing_dir: Path, settle_seconds: float, now: float, mtime: float | None = None
) -> bool:
    """True for a file still being written: hidden, .tmp/.part, or modified within `settle_seconds`."""
    relative = path.relative_to(landing_dir)
    if any(part.startswith(".") for part in relative.parts):
        return True
    if path.name.lower().endswith(IN_PROGRESS_SUFFIXES):
        return True
    mtime = path.lstat().st_mtime if mtime is None else mtime
    return now - mtime < settle_seconds


def settled_files(
    landing_dir: Path, settle_seconds: float, now: float | None = None, scan: LandingScan | None = None
) -> Iterator[LandingFile]:
    """Complete files under the landing folder in name order (names sort by arrival for our writers)."""
    now = time.time() if now is None else now
    for path, info in (scan or scan_landing(landing_dir)).files:
        if is_in_progress(path, landing_dir, settle_seconds, now, info.st_mtime):
            continue
        yield LandingFile(path, path.relative_to(landing_dir).as_posix(), info.st_size, info.st_mtime)


def count_waiting(landing_dir: Path, settle_seconds: float, now: float | None = None) -> int:
    """Files that exist but are not settled yet (they wait for the next run)."""
    now = time.time() if now is None else now
    return sum(
        1
        for path, info in scan_landing(landing_dir).files
        if is_in_progress(path, landing_dir, settle_seconds, now, info.st_mtime)
    )


def latest_arrival(landing_dir: Path) -> float | None:
    """When the newest file in the landing folder arrived, settled or not (None when empty).

    A file renamed into place keeps the modification time of its last write; the rename sets its change time.
    """
    stats = [info for _, info in scan_landing(landing_dir).files]
    return max((max(s.st_mtime, s.st_ctime) for s in stats), default=None)


def sha256_of(path: Path, chunk_bytes: int = 4 << 20, root: Path | None = None) -> str:
    """Hex SHA-256 of the file's bytes as stored (compressed files hash compressed); symlinks are not followed."""
    digest = hashlib.sha256()
    with open_landing(path, root) as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
