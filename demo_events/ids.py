"""Identifier strings derived from numbers and the seed: message ids, anonymous ids, user ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_events.sampling import splitmix64

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# (first, last + 1) character of each UUID group in the output, and where its hex digits start.
_UUID_SPANS = ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20))


def _keys(seed: int, salt: int) -> tuple[np.uint64, np.uint64]:
    base = splitmix64(np.array([seed * 16 + salt], dtype=np.uint64))
    return base[0], splitmix64(base)[0]


def uuid_strings(numbers: np.ndarray, seed: int, salt: int, valid: np.ndarray | None = None) -> pa.Array:
    """UUID-shaped strings, distinct for distinct numbers (first half is a bijection of the number).

    Rows where `valid` is False are null. Built in numpy and handed to Arrow without a per-row step.
    """
    n = len(numbers)
    k1, k2 = _keys(seed, salt)
    x = numbers.astype(np.uint64)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = splitmix64(x + k1).astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = splitmix64(x ^ k2).astype(">u8").view(np.uint8).reshape(n, 8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = _HEX[raw >> 4]
    nibbles[:, 1::2] = _HEX[raw & 15]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for lo, hi, src in _UUID_SPANS:
        text[:, lo:hi] = nibbles[:, src : src + hi - lo]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    if valid is None or valid.all():
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    bitmap = pa.array(valid.astype(bool)).buffers()[1]
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(text), bitmap, null_count=int(n - valid.sum())
    )


def message_ids(numbers: np.ndarray, seed: int) -> pa.Array:
    """Message ids for message numbers; negative numbers (a planted defect) give null."""
    return uuid_strings(numbers, seed, salt=1, valid=numbers >= 0)


def anonymous_ids(users: np.ndarray, seed: int, valid: np.ndarray | None = None) -> pa.Array:
    """The anonymous (device) id of each user index."""
    return uuid_strings(users, seed, salt=2, valid=valid)


def user_ids(users: np.ndarray) -> pa.Array:
    """User ids as the events carry them: "usr_" and the 1-based user index, at least 8 digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(users.astype(np.int64) + 1), pa.string()), 8, "0")
    return pc.binary_join_element_wise("usr_", digits, "")


# The same ids rendered by DuckDB from the index (a str.format template: fill in `column`).
USER_ID_SQL = "format('usr_{{:08d}}', {column} + 1)"
