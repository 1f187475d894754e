"""The suppression list: keyed hashes of every id ever erased, so that later events of those users are dropped.

One hash per line in $DATA_DIR/privacy/suppressed_ids.txt (never the clear id). Erasure adds to it before it
touches any store, so an event that arrives during an erasure is dropped too; the collector drops suppressed events
before spooling them and ingestion drops them before loading (both count what they dropped).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from privacy.keys import SUBJECT, keyed_hash, privacy_key
from settings import PrivacySettings
from stores.files import fsync_dir

MAX_LIST_BYTES = 1 << 30  # a bound on what readers load (about 15M erased ids)


def read_hashes(path: Path) -> frozenset[str]:
    """The hashes of the list (empty when there is none)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return frozenset()
    if size > MAX_LIST_BYTES:
        raise ValueError(f"{path}: {size} bytes is beyond the suppression list's bound of {MAX_LIST_BYTES}")
    with path.open() as handle:
        return frozenset(line.strip() for line in handle if len(line.strip()) == 64)


def add_hashes(path: Path, hashes: Iterable[str]) -> int:
    """Add hashes to the list (atomically: a reader sees the old list or the new one); returns how many were new."""
    current = read_hashes(path)
    new = sorted(set(hashes) - current)
    if not new:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w") as handle:
        for value in sorted(current | set(new)):
            handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
    return len(new)


class Suppressor:
    """Answers "is this id suppressed?" from the list on disk, re-read when the file changes (checked at most once
    per `recheck_seconds`). Thread-safe; cheap when the list is empty."""

    def __init__(self, settings: PrivacySettings, recheck_seconds: float = 1.0) -> None:
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._hashes: frozenset[str] = frozenset()
        self._signature: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._key: bytes | None = None

    def _refresh(self, now: float) -> None:
        if now - self._checked < self.recheck_seconds:
            return
        self._checked = now
        try:
            stat = self.settings.suppression_path.stat()
            signature = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        if signature != self._signature:
            self._hashes = read_hashes(self.settings.suppression_path) if signature else frozenset()
            self._signature = signature
            if self._hashes and self._key is None:
                self._key = privacy_key(self.settings)

    @property
    def hashes(self) -> frozenset[str]:
        """The current list (re-read if the file changed)."""
        with self._lock:
            self._refresh(time.monotonic())
            return self._hashes

    def suppressed(self, *ids: object) -> bool:
        """True when any of the (string) ids is on the list."""
        hashes = self.hashes
        if not hashes:
            return False
        key = self._key
        assert key is not None
        return any(isinstance(value, str) and keyed_hash(key, SUBJECT, value) in hashes for value in ids)

    def suppressed_values(self, values: Iterable[str]) -> set[str]:
        """Those of `values` that are on the list."""
        hashes = self.hashes
        if not hashes:
            return set()
        key = self._key
        assert key is not None
        return {value for value in set(values) if keyed_hash(key, SUBJECT, value) in hashes}
