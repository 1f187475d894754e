"""One event of the Tracking API in, one line of the landing input contract out (or the reason it was rejected).

The collector applies the contract's row rules that it can judge alone (ids, type, event name, timestamps, object
fields, size) so that a client hears about a bad event in the response; ingestion still applies every rule.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

# Types the landing contract (ingestion) accepts, and the API's other calls: answered, counted, not spooled.
SPOOLED_TYPES = frozenset({"track", "page", "screen", "identify"})
API_ONLY_TYPES = frozenset({"group", "alias"})
KNOWN_TYPES = SPOOLED_TYPES | API_ONLY_TYPES
# The same well-formed event name as ingestion/validate.py's EVENT_NAME_PATTERN (kept in step by a test).
EVENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/&()'-]{0,199}")
OBJECT_FIELDS = ("properties", "traits", "context")
# snake_case spellings ingestion would read before the camelCase fields the collector writes.
SNAKE_DUPLICATES = ("message_id", "user_id", "anonymous_id", "received_at")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event was refused: `code` is the metrics label, `reason` the text the client gets."""

    index: int
    code: str
    reason: str
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event that passed: its type, and the line to spool (None for types the landing contract lacks)."""

    type: str
    line: bytes | None


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What every event of one request shares."""

    source: str
    received_at: datetime
    sent_at: Any = None  # the request's sentAt as sent (batch level); an event's own sentAt wins
    max_event_bytes: int = 32 * 1024
    future_tolerance: timedelta = timedelta(hours=24)
    received_text: str = ""  # received_at as written; filled in once per request
    base_context: dict[str, Any] | None = None  # a batch's top-level context, under each event's own

    def __post_init__(self) -> None:
        object.__setattr__(self, "received_text", iso(self.received_at))


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware datetime (no offset means UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z, as the landing files carry it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _identifier(value: Any) -> str | bool | None:
    """A user or anonymous id as text (numbers are stringified as the SDKs do); False when unusable."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return False


def prepare(raw: Any, index: int, info: RequestInfo, forced_type: str | None = None) -> Accepted | Rejection:
    """Check one event and build its landing line: receivedAt set, timestamp corrected for clock skew."""
    if not isinstance(raw, dict):
        return Rejection(index, "not_an_object", "event is not a JSON object")
    message_id = raw.get("messageId")
    if message_id is not None and not isinstance(message_id, str | int):
        return Rejection(index, "invalid_message_id", "messageId must be a string")
    message_id = str(message_id).strip() if message_id is not None else ""

    size = len(orjson.dumps(raw))
    if size > info.max_event_bytes:
        return Rejection(
            index,
            "event_too_large",
            f"event of {size} bytes is over the limit of {info.max_event_bytes} bytes",
            message_id or None,
        )

    kind = forced_type or raw.get("type")
    if kind is None:
        return Rejection(index, "missing_type", "event has no type", message_id or None)
    if not isinstance(kind, str) or kind.strip().lower() not in KNOWN_TYPES:
        return Rejection(index, "unknown_type", f"unknown type: {str(kind)[:80]}", message_id or None)
    kind = kind.strip().lower()

    user_id = _identifier(raw.get("userId"))
    anonymous_id = _identifier(raw.get("anonymousId"))
    if user_id is False or anonymous_id is False:
        return Rejection(index, "invalid_id", "userId and anonymousId must be strings or numbers", message_id or None)
    if user_id is None and anonymous_id is None:
        return Rejection(index, "missing_id", "event has neither userId nor anonymousId", message_id or None)

    for name in OBJECT_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, dict):
            return Rejection(index, "field_not_an_object", f"{name} is not a JSON object", message_id or None)

    event_name = raw.get("event")
    if kind == "track":
        if not isinstance(event_name, str) or not event_name.strip():
            return Rejection(index, "missing_event_name", "track event without an event name", message_id or None)
        if not EVENT_NAME_RE.fullmatch(event_name.strip()):
            return Rejection(
                index, "malformed_event_name", f"malformed event name: {event_name[:80]}", message_id or None
            )

    sent_text = raw.get("sentAt", info.sent_at)
    original = raw.get("timestamp")
    if original is None:
        timestamp = info.received_at  # Segment's rule: no timestamp means the time of arrival
    else:
        parsed = parse_time(original)
        if parsed is None:
            return Rejection(index, "bad_timestamp", f"unparseable timestamp: {str(original)[:80]}", message_id or None)
        timestamp = parsed
        if sent_text is not None:
            sent_at = parse_time(sent_text)
            if sent_at is None:
                return Rejection(index, "bad_sent_at", f"unparseable sentAt: {str(sent_text)[:80]}", message_id or None)
            # The client's clock may be off: keep its interval between event and send, anchor it at arrival.
            timestamp = info.received_at - (sent_at - parsed)
    if timestamp > info.received_at + info.future_tolerance:
        hours = info.future_tolerance.total_seconds() / 3600
        return Rejection(
            index, "future_timestamp", f"timestamp more than {hours:g} hours after receivedAt", message_id or None
        )

    if kind in API_ONLY_TYPES:
        return Accepted(kind, None)

    if not message_id:
        # A retried request without ids must get the same ids again, so they come from the content.
        digest = hashlib.blake2b(info.source.encode() + b"\0" + orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
        message_id = "collector-" + digest.hexdigest()[:32]

    out = dict(raw)
    out.pop("writeKey", None)
    for name in SNAKE_DUPLICATES:
        out.pop(name, None)
    out["messageId"] = message_id
    out["type"] = kind
    if user_id is not None:
        out["userId"] = user_id
    else:
        out.pop("userId", None)
    if anonymous_id is not None:
        out["anonymousId"] = anonymous_id
    else:
        out.pop("anonymousId", None)
    out["timestamp"] = iso(timestamp)
    out["receivedAt"] = info.received_text
    if original is not None:
        out["originalTimestamp"] = original
    else:
        out.pop("originalTimestamp", None)
    if sent_text is not None:
        out["sentAt"] = sent_text

    context = dict(raw.get("context") or {})
    if info.base_context:
        context = {**info.base_context, **context}
    if kind == "identify" and raw.get("traits") is None and isinstance(context.get("traits"), dict):
        out["traits"] = context["traits"]  # RudderStack's SDK sends identify traits inside context
    if kind in ("page", "screen"):
        properties = dict(raw.get("properties") or {})
        for name in ("name", "category"):
            if isinstance(raw.get(name), str) and name not in properties:
                properties[name] = raw[name]
        if properties:
            out["properties"] = properties
    context["collector"] = {"source": info.source, "original_timestamp": original, "sent_at": sent_text}
    out["context"] = context
    return Accepted(kind, orjson.dumps(out))
