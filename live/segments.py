"""Whether a user is in a live segment at a moment, and until when that holds, from the user's stored events and
batch traits (pure functions: live/membership.py keeps the result in Redis)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from live.definitions import Condition, Segment

SEPARATOR = "\x1f"  # between the parts of an events-zset member: message id, event name, kept properties (JSON)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    at_ms: int
    message_id: str
    name: str
    properties: dict[str, str]


def member_text(message_id: str, name: str, properties: dict[str, str]) -> str:
    """The events-zset member of one event: the same text for the same message (so a retry is one member)."""
    kept = orjson.dumps(properties, option=orjson.OPT_SORT_KEYS).decode() if properties else ""
    return f"{message_id}{SEPARATOR}{name}{SEPARATOR}{kept}"


def parse_member(member: bytes | str, score: float) -> StoredEvent:
    text = member.decode() if isinstance(member, bytes) else member
    message_id, name, kept = ([*text.split(SEPARATOR, 2), "", ""])[:3]
    return StoredEvent(int(score), message_id, name, orjson.loads(kept) if kept else {})


def _condition(condition: Condition, events: list[StoredEvent], traits: dict[str, str], at_ms: int):
    """(holds, until ms or None for 'as long as nothing else changes')."""
    if condition.trait is not None:
        return traits.get(condition.trait) in condition.values, None
    times = sorted(
        event.at_ms
        for event in events
        if event.name == condition.event
        and at_ms - condition.window_ms < event.at_ms <= at_ms
        and all(f.passes(event.properties) for f in condition.filters)
    )
    if len(times) < condition.min_count:
        return False, None
    # it holds until the min_count-th newest of them leaves the window
    return True, times[-condition.min_count] + condition.window_ms


def evaluate(
    segment: Segment, events: list[StoredEvent], traits: dict[str, str], at_ms: int
) -> tuple[bool, int | None]:
    """Whether the user is in `segment` at `at_ms`, and when that stops holding if no event comes (None: not by
    time alone). Events after `at_ms` do not count."""
    results = [_condition(c, events, traits, at_ms) for c in segment.conditions]
    if segment.combine == "all":
        if not all(holds for holds, _ in results):
            return False, None
        limits = [until for _, until in results if until is not None]
        return True, min(limits) if limits else None
    held = [until for holds, until in results if holds]
    if not held:
        return False, None
    return True, None if any(until is None for until in held) else max(held)
