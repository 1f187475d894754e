"""The live segments' sizes now, and their entries and exits over the last hour and day, for the dashboard.

Plain Python over a Redis client (no Streamlit), read-only, one pipelined round trip: HLEN of each segment's members,
GET of the events applied, and one XREVRANGE of the transitions stream (what MembershipKeeper adds: `kind` entered,
exited or cart_abandoned, `segment`, `user_id`, `at_ms`, `key`).

An entry or exit counts in a window by its own time, `at_ms` (an event time, as docs/live.md says), not by when the
consumer wrote it: after a replay or an outage the transitions written now for old events do not count as recent.
The stream is read newest first, from now back to the stream ids of the last day (a transition is written at or
after its event time, unless a client's clock is ahead), at most MAX_TRANSITIONS_READ entries: a stream of any
length costs at most that. When the bound cuts the read short, the windows that begin before the oldest entry read
are marked partial (their counts are lower bounds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

from live.definitions import Definitions
from live.keys import Keys

WINDOWS_MS = {"1h": 3_600_000, "24h": 86_400_000}
# The most transitions one read takes (the stream itself keeps about 100,000: membership.TRANSITIONS_KEPT): 10,000
# take about 0.3 s to read and parse on a 2-core machine (redis-py without hiredis), so a page never waits longer.
MAX_TRANSITIONS_READ = 10_000


@dataclass(frozen=True)
class SegmentSize:
    """One live segment: members now, entries and exits by event time in each window of WINDOWS_MS."""

    name: str
    description: str
    members: int
    entered: dict[str, int]
    exited: dict[str, int]


@dataclass(frozen=True)
class SegmentSizes:
    """Every defined live segment's size at `as_of_ms`, and how much of the transitions stream was read."""

    as_of_ms: int
    segments: tuple[SegmentSize, ...]
    events_applied: int  # by the live consumer since the state was empty (0: it has not run on this prefix)
    transitions_read: int
    # stream time (ms) of the oldest transition read when MAX_TRANSITIONS_READ cut the read short, else None
    read_back_to_ms: int | None
    partial_windows: tuple[str, ...]  # windows (keys of WINDOWS_MS) that begin before read_back_to_ms

    def rows(self) -> list[dict[str, object]]:
        """One flat row per segment: name, description, members, entered_1h, exited_1h, entered_24h, exited_24h."""
        rows = []
        for segment in self.segments:
            row: dict[str, object] = {
                "name": segment.name,
                "description": segment.description,
                "members": segment.members,
            }
            for window in WINDOWS_MS:
                row[f"entered_{window}"] = segment.entered[window]
                row[f"exited_{window}"] = segment.exited[window]
            rows.append(row)
        return rows


def _stream_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


def read_sizes(
    redis: Redis,
    keys: Keys,
    definitions: Definitions,
    now_ms: int | None = None,
    max_transitions: int = MAX_TRANSITIONS_READ,
) -> SegmentSizes:
    """Members now (HLEN of each segment's members hash) and entries and exits whose event time is in each window
    ending at `now_ms` (default: now; a time after now, from a client clock ahead, counts as in the window), for
    each segment of `definitions`; transitions of segments no longer defined and abandoned carts are left out.
    `redis` answers in bytes (redis-py's default); its ConnectionError / TimeoutError pass through."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    names = [segment.name for segment in definitions.segments]
    longest = max(WINDOWS_MS.values())
    pipeline = redis.pipeline(transaction=False)
    for name in names:
        pipeline.hlen(keys.members(name))
    pipeline.get(keys.applied)
    pipeline.xrevrange(keys.transitions, max="+", min=str(max(now_ms - longest, 0)), count=max_transitions)
    *members, applied, transitions = pipeline.execute()

    entered = {name: dict.fromkeys(WINDOWS_MS, 0) for name in names}
    exited = {name: dict.fromkeys(WINDOWS_MS, 0) for name in names}
    for _, fields in transitions:
        kind = fields.get(b"kind")
        counts = entered if kind == b"entered" else exited if kind == b"exited" else None
        segment = (fields.get(b"segment") or b"").decode(errors="replace")
        if counts is None or segment not in counts:
            continue
        try:
            at_ms = int(fields[b"at_ms"])
        except (KeyError, ValueError):
            continue
        for window, span in WINDOWS_MS.items():
            if at_ms > now_ms - span:
                counts[segment][window] += 1

    read_back_to_ms = _stream_ms(transitions[-1][0]) if len(transitions) >= max_transitions else None
    partial: tuple[str, ...] = ()
    if read_back_to_ms is not None:
        partial = tuple(window for window, span in WINDOWS_MS.items() if now_ms - span < read_back_to_ms)
    return SegmentSizes(
        as_of_ms=now_ms,
        segments=tuple(
            SegmentSize(segment.name, segment.description, int(size), entered[segment.name], exited[segment.name])
            for segment, size in zip(definitions.segments, members, strict=True)
        ),
        events_applied=int(applied or 0),
        transitions_read=len(transitions),
        read_back_to_ms=read_back_to_ms,
        partial_windows=partial,
    )
