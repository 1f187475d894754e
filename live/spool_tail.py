"""Following the collector's spool files from where the consumer left off, whole lines only.

A spool file keeps its name when the collector rotates it into `landing/collector/` (one atomic rename), so the
consumer's place in it is (file name, bytes read), wherever the file is now. Files still being written are read up
to their last newline (the collector writes whole lines and cuts a torn tail at recovery).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SPOOL_GLOB = "*/events-*.jsonl"
LANDED_GLOB = "events-*.jsonl"


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines of one file from byte `start` to `end`."""

    name: str
    start: int
    end: int
    data: bytes

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(byte offset in the file, line without its newline) of each non-empty line."""
        position = 0
        data = self.data
        while position < len(data):
            newline = data.index(b"\n", position)
            if newline > position:
                yield self.start + position, data[position:newline]
            position = newline + 1


@dataclass
class SpoolTail:
    """The spool files of one collector spool root and landing folder, and how far each has been read."""

    spool_root: Path
    landing_dir: Path
    offsets: dict[str, int]  # file name -> bytes consumed
    max_read_bytes: int
    landing_rescan_seconds: float = 5.0
    _paths: dict[str, Path] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)  # landed and read to the end: never read again
    _landing_scanned_at: float = float("-inf")
    skipped_long_lines: int = 0

    def _discover(self) -> None:
        now = time.monotonic()
        if now - self._landing_scanned_at >= self.landing_rescan_seconds:
            self._landing_scanned_at = now
            for path in _glob(self.landing_dir, LANDED_GLOB):
                if path.name not in self._finished:
                    self._paths[path.name] = path
        for path in _glob(self.spool_root, SPOOL_GLOB):
            self._paths.setdefault(path.name, path)

    def _locate(self, name: str) -> Path | None:
        """Where file `name` is now: where it was last seen, else landed under the same name."""
        for path in (self._paths[name], self.landing_dir / name):
            if path.exists():
                self._paths[name] = path
                return path
        return None

    def read(self) -> Iterator[Chunk]:
        """The new whole lines of every file, oldest file name first, at most max_read_bytes per file per call."""
        self._discover()
        for name in sorted(self._paths):
            path = self._locate(name)
            if path is None:  # gone (expired, or moved while listed): found again by the next landing scan
                del self._paths[name]
                continue
            chunk = self._read_file(name, path)
            if chunk is not None:
                yield chunk

    def _read_file(self, name: str, path: Path) -> Chunk | None:
        start = self.offsets.get(name, 0)
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                landed = path.parent == self.landing_dir
                if start >= size:
                    if landed:  # a landed file never grows again
                        self._finished.add(name)
                        del self._paths[name]
                    return None
                handle.seek(start)
                data = handle.read(min(size - start, self.max_read_bytes))
        except FileNotFoundError:
            return None
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < self.max_read_bytes:
                return None  # a line still being written
            # a line longer than the read bound (the collector writes none): skipped to the next newline
            self.skipped_long_lines += 1
            return Chunk(name, start, start + len(data), b"")
        return Chunk(name, start, start + cut, data[:cut])


def _glob(folder: Path, pattern: str) -> list[Path]:
    try:
        return list(folder.glob(pattern))
    except OSError:
        return []
