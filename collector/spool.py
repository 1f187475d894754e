"""The durable part: an append-only spool file, fsync'ed before any request is answered, rotated into landing.

Files move from the spool folder into `landing/collector/` by one atomic rename (same file system), so the landing
folder only ever sees whole files and a file is either still in the spool or landed, never both. A spool file left
by a crash (kill -9, power loss) is recovered at the next start: a torn last line, from a write the crash cut short
and that was never acknowledged, is cut off, and the rest is moved into landing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from stores.files import fsync_dir

log = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
LOCK_NAME = ".lock"  # held (flock) by the live process that owns a spool subfolder


def cut_torn_tail(path: Path) -> int:
    """Truncate `path` after its last newline (a line without one was never acknowledged); returns bytes cut."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "r+b") as handle:
        position = size
        chunk = 64 * 1024
        while position > 0:
            start = max(0, position - chunk)
            handle.seek(start)
            block = handle.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep < size:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return size - keep


class Spool:
    """Synchronous spool file operations; `SpoolWriter` runs them on one thread, in order.

    Each process spools into its own locked subfolder of the spool root, so several workers or collectors can share
    one DATA_DIR; a subfolder whose lock is free belongs to a process that died, and the next start lands it.
    """

    def __init__(self, spool_root: Path, landing_dir: Path, rotate_events: int) -> None:
        self.spool_root = spool_root
        self.landing_dir = landing_dir
        self.rotate_events = rotate_events
        self.spool_dir = spool_root / f"p{os.getpid()}-{secrets.token_hex(4)}"
        self.events = 0  # in the open file
        self.bytes = 0
        self.first_write_at: float | None = None  # wall clock of the open file's first event
        self.rotations = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._lock_fd: int | None = None
        self._sequence = 0
        self._unlanded: list[Path] = []
        self.on_rotate: Callable[[Path, int], None] | None = None

    # -- life cycle -------------------------------------------------------------------------------------------

    def open(self) -> list[Path]:
        """Lock this process's spool subfolder and land what dead processes left; returns the files landed."""
        self.landing_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(parents=True)
        lock_fd = os.open(self.spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = lock_fd
        fsync_dir(self.spool_root)
        return self.recover()

    def recover(self) -> list[Path]:
        """Land the spool files of every subfolder whose process is gone (its lock is free), then remove it."""
        landed: list[Path] = []
        for folder in sorted(p for p in self.spool_root.iterdir() if p.is_dir() and p != self.spool_dir):
            try:
                fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # removed by another process recovering it right now
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live process
            try:
                landed += self._recover_folder(folder)
                (folder / LOCK_NAME).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            finally:
                os.close(fd)
        if landed:
            fsync_dir(self.spool_root)
        return landed

    def _recover_folder(self, folder: Path) -> list[Path]:
        for stale in self.landing_dir.glob(f".collector-{folder.name}-*.part"):
            stale.unlink()  # an interrupted cross-device copy; its source is still in the folder
        landed = []
        for path in sorted(folder.glob("*" + SPOOL_SUFFIX)):
            cut = cut_torn_tail(path)
            if cut:
                log.warning("cut a torn last line", extra={"file": path.name, "bytes_cut": cut})
            if path.stat().st_size == 0:
                path.unlink()
                continue
            with open(path, "rb") as handle:
                lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
            target = self._land(path)
            log.info("recovered a spool file", extra={"file": target.name, "events": lines, "from": folder.name})
            landed.append(target)
        fsync_dir(folder)
        return landed

    def close(self) -> Path | None:
        """Rotate what is spooled, then remove and release this process's subfolder."""
        landed = self.rotate()
        if self._lock_fd is not None:
            if not self._unlanded:
                (self.spool_dir / LOCK_NAME).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.spool_dir.rmdir()
            os.close(self._lock_fd)
            self._lock_fd = None
        return landed

    # -- writing ----------------------------------------------------------------------------------------------

    def _open_file(self) -> None:
        self._sequence += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._path = self.spool_dir / f"events-{stamp}-p{os.getpid()}-{self._sequence:06d}{SPOOL_SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fsync_dir(self.spool_dir)
        self.events = 0
        self.bytes = 0
        self.first_write_at = None

    def write(self, data: bytes, events: int) -> Path | None:
        """Append `data` (whole lines) and make it durable; rotates when the file reached `rotate_events`."""
        if self._fd is None:
            self._open_file()
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
            os.fdatasync(self._fd)
        except OSError:
            # Leave no partial request behind: the caller answers 503 and the client retries it whole.
            os.ftruncate(self._fd, self.bytes)
            raise
        if self.first_write_at is None:
            self.first_write_at = time.time()
        self.events += events
        self.bytes += len(data)
        if self.events >= self.rotate_events:
            try:
                return self.rotate()
            except OSError:
                # The events are durable in the spool already: answer success, land them at a later rotation.
                log.exception("rotation failed; the spool file will be landed later")
        return None

    def rotate(self) -> Path | None:
        """Close the open file and move it into landing; None when nothing was spooled since the last rotation."""
        while self._unlanded:  # closed files whose move into landing failed before
            self._land(self._unlanded[0])
            self._unlanded.pop(0)
        if self._fd is None:
            return None
        assert self._path is not None
        os.fsync(self._fd)
        os.close(self._fd)
        path, events, size = self._path, self.events, self.bytes
        self._fd, self._path = None, None
        self.events, self.bytes, self.first_write_at = 0, 0, None
        if size == 0:
            path.unlink()
            fsync_dir(self.spool_dir)
            return None
        try:
            target = self._land(path)
        except OSError:
            self._unlanded.append(path)
            raise
        fsync_dir(self.spool_dir)
        self.rotations += 1
        if self.on_rotate:
            self.on_rotate(target, events)
        return target

    def lag_seconds(self) -> float:
        """Age of the oldest event not yet in landing."""
        return 0.0 if self.first_write_at is None else max(0.0, time.time() - self.first_write_at)

    def _land(self, path: Path) -> Path:
        target = self.landing_dir / path.name
        try:
            os.rename(path, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            # Spool and landing on different file systems: copy under a name ingestion skips, then rename.
            partial = self.landing_dir / f".collector-{path.parent.name}-{path.name}.part"
            with open(path, "rb") as source, open(partial, "wb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
                copy.flush()
                os.fsync(copy.fileno())
            os.rename(partial, target)
            fsync_dir(self.landing_dir)
            path.unlink()
            return target
        fsync_dir(self.landing_dir)
        return target


class SpoolWriter:
    """Group commit on one thread: requests that arrive while a write is on disk share the next fsync."""

    def __init__(self, spool: Spool, rotate_seconds: float) -> None:
        self.spool = spool
        self.rotate_seconds = rotate_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._pending: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> list[Path]:
        """Open the spool (recovering leftovers) and start the rotation timer."""
        loop = asyncio.get_running_loop()
        recovered = await loop.run_in_executor(self._executor, self.spool.open)
        self._timer = asyncio.create_task(self._rotate_on_time())
        return recovered

    async def append(self, data: bytes, events: int) -> None:
        """Return once `data` is on disk; raises the OSError of a failed write."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((data, events, future))
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            self._flush_task = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending, []
                data = b"".join(item[0] for item in group)
                events = sum(item[1] for item in group)
                try:
                    await loop.run_in_executor(self._executor, self.spool.write, data, events)
                except Exception as error:  # each waiting request answers 503
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for _, _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False
            self._idle.set()

    async def rotate(self) -> Path | None:
        """Rotate now (after any write already queued on the spool thread)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.spool.rotate)

    async def _rotate_on_time(self) -> None:
        tick = min(0.5, self.rotate_seconds / 4)
        while True:
            await asyncio.sleep(tick)
            if self.spool.first_write_at is not None and self.spool.lag_seconds() >= self.rotate_seconds:
                try:
                    await self.rotate()
                except OSError:
                    log.exception("rotation failed; will retry")

    async def stop(self) -> Path | None:
        """Finish queued writes, rotate the spool into landing and release it."""
        if self._timer:
            self._timer.cancel()
        await self._idle.wait()
        loop = asyncio.get_running_loop()
        landed = await loop.run_in_executor(self._executor, self.spool.close)
        self._executor.shutdown(wait=True)
        return landed
