"""Defective rows, each derived from a clean row and counted by kind.

A duplicate is an exact copy of a clean row (same message id, same fields), so it loads once. Every other
kind gets a fresh message id (or none) and exactly one defect, so ingestion rejects it for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.config import GeneratorConfig
from demo_events.events import IDENTIFY, PAGE, Events
from demo_events.sampling import apportion

# Defect codes of a written row; 0 is a clean row.
DEFECTS = (
    "clean",
    "duplicate",
    "missing_message_id",
    "missing_user_ids",
    "bad_timestamp",
    "future_timestamp",
    "track_without_event",
    "unknown_type",
)
CODE = {name: code for code, name in enumerate(DEFECTS)}
BAD_TIMESTAMPS = ("not-a-date", "2026-02-30T10:00:00Z", "31/12/2026 25:61", "yesterday")
UNKNOWN_TYPES = ("purchase", "click", "pageview")
FUTURE_YEAR = 2999
# How ingestion words the rejection of each kind (the start of raw.events_rejected.reason).
REJECT_REASONS = {
    "missing_message_id": "missing message_id",
    "missing_user_ids": "missing both user_id and anonymous_id",
    "bad_timestamp": "unparseable timestamp",
    "future_timestamp": "timestamp ",
    "track_without_event": "track event without an event name",
    "unknown_type": "unknown type",
}


@dataclass
class Defects:
    """Defective rows: the clean row each copies, its defect code, and its message number (-1: none)."""

    src: np.ndarray  # int64, index of the clean template row
    code: np.ndarray  # int8, index into DEFECTS
    msg_no: np.ndarray  # int64
    later_file: np.ndarray  # bool, duplicates meant for a later file than their original

    def __len__(self) -> int:
        return len(self.src)

    def counts(self) -> dict[str, int]:
        """Rows per defect kind (every kind listed, zeros included)."""
        found = np.bincount(self.code, minlength=len(DEFECTS))
        return {name: int(found[code]) for code, name in enumerate(DEFECTS) if code}


def defect_count(n_clean: int, dirty_share: float) -> int:
    """Defective rows to add so that they are `dirty_share` of all rows."""
    return round(n_clean * dirty_share / (1 - dirty_share))


def make_defects(events: Events, config: GeneratorConfig, rng: np.random.Generator) -> Defects:
    """Draw the defective rows; kinds split by `dirty_mix` exactly (largest remainder)."""
    n_clean = len(events)
    kinds = [name for name in DEFECTS[1:] if config.dirty_mix.get(name, 0) > 0]
    total = defect_count(n_clean, config.dirty_share) if n_clean else 0
    counts = dict(zip(kinds, apportion([config.dirty_mix[k] for k in kinds], total).tolist(), strict=True))

    src: list[np.ndarray] = []
    code: list[np.ndarray] = []
    n_dup = min(counts.get("duplicate", 0), n_clean)
    src.append(rng.choice(n_clean, size=n_dup, replace=False) if n_dup else np.zeros(0, np.int64))
    code.append(np.full(n_dup, CODE["duplicate"], dtype=np.int8))
    tracks = np.flatnonzero((events.kind != PAGE) & (events.kind != IDENTIFY))
    for name in kinds:
        if name == "duplicate":
            continue
        pool = tracks if name == "track_without_event" else None
        k = counts[name] if pool is None or len(pool) else 0
        picks = rng.integers(0, n_clean, k) if pool is None else pool[rng.integers(0, len(pool), k)]
        src.append(picks.astype(np.int64))
        code.append(np.full(k, CODE[name], dtype=np.int8))

    src_all = np.concatenate(src).astype(np.int64)
    code_all = np.concatenate(code)
    fresh = np.cumsum(code_all > CODE["duplicate"]) - 1 + n_clean  # new message numbers after the clean ones
    msg_no = np.where(code_all == CODE["duplicate"], src_all, fresh)
    msg_no = np.where(code_all == CODE["missing_message_id"], -1, msg_no)
    later = (code_all == CODE["duplicate"]) & (rng.random(len(src_all)) < config.duplicate_later_share)
    return Defects(src=src_all, code=code_all, msg_no=msg_no.astype(np.int64), later_file=later)
