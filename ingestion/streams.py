"""Bytes of a landing file in large blocks, with gzip damage reported only after every good byte is out.

Python's gzip module raises on a truncated file from inside a read and drops what that read had
decompressed; decompressing with zlib directly keeps all of it, so every complete line before the damage
can still load.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path

READ_BYTES = 1 << 20


class DamagedFile(Exception):
    """Raised after the last recoverable block of a truncated or corrupt compressed file."""


def file_blocks(path: Path, block_bytes: int = 16 << 20) -> Iterator[bytes]:
    """The file's (decompressed) bytes in blocks of about `block_bytes`; raises DamagedFile at the damage."""
    compressed = path.name.lower().endswith(".gz")
    with open(path, "rb") as handle:
        raw = iter(lambda: handle.read(READ_BYTES), b"")
        yield from _rebatch(_gunzip(raw) if compressed else raw, block_bytes)


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(wbits=31)
    for chunk in chunks:
        while chunk:
            try:
                yield decompressor.decompress(chunk)
            except zlib.error as error:
                raise DamagedFile(f"corrupt gzip data: {error}") from error
            # Concatenated gzip members are one stream (gzip -c a >> b).
            chunk = decompressor.unused_data if decompressor.eof else b""
            if chunk:
                decompressor = zlib.decompressobj(wbits=31)
    try:
        yield decompressor.flush()
    except zlib.error as error:
        raise DamagedFile(f"corrupt gzip data: {error}") from error
    if not decompressor.eof:
        raise DamagedFile("gzip stream ends before its end marker (file truncated)")


def _rebatch(pieces: Iterator[bytes], block_bytes: int) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    try:
        for piece in pieces:
            buffer.append(piece)
            size += len(piece)
            if size >= block_bytes:
                yield b"".join(buffer)
                buffer, size = [], 0
    except DamagedFile:
        if buffer:
            yield b"".join(buffer)
        raise
    if buffer:
        yield b"".join(buffer)


class BlockStream(io.RawIOBase):
    """A read-only file object over `file_blocks`, for readers that want one (csv)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
