"""One event of the Tracking API in, one line of the landing input contract out (or the reason it was rejected).

The collector applies the contract's row rules that it can judge alone (ids, type, event name, timestamps, object
fields, size) so that a client hears about a bad event in the response; ingestion still applies every rule.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from event_contract import (
    API_ONLY_TYPES,
    EVENT_NAME_RE,
    FUTURE_TOLERANCE_HOURS,
    MALFORMED_EVENT_NAME,
    MIN_EVENT_TIME,
    MISSING_EVENT_NAME,
    NOT_AN_OBJECT,
    REASON_PREVIEW_CHARS,
    STORED_TYPES,
    TIMESTAMP_BEFORE_MIN_CODE,
    UNKNOWN_TYPE,
    UNPARSEABLE_TIMESTAMP,
    min_event_time_reason,
)

log = logging.getLogger("collector")

# Types the landing contract accepts, and the API's other calls: answered, counted, not spooled.
SPOOLED_TYPES = frozenset(STORED_TYPES)
KNOWN_TYPES = SPOOLED_TYPES | frozenset(API_ONLY_TYPES)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Not written to landing: the key, fields the collector sets itself, and the snake_case spellings ingestion would
# read before the camelCase fields the collector writes.
DROPPED_FIELDS = (
    "writeKey", "userId", "anonymousId", "originalTimestamp",
    "message_id", "user_id", "anonymous_id", "received_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event was refused: `code` is the metrics label, `reason` the text the client gets."""

    index: int
    code: str
    reason: str
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "code": self.code, "reason": self.reason}


class Accepted(NamedTuple):
    """An event that passed: its type, and the line to spool (None for types the landing contract lacks)."""

    type: str
    line: bytes | None


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What every event of one request shares (derived values computed once per request)."""

    source: str
    received_at: datetime
    sent_at: Any = None  # the request's sentAt as sent (batch level); an event's own sentAt wins
    max_event_bytes: int = 32 * 1024
    future_tolerance: timedelta = timedelta(hours=FUTURE_TOLERANCE_HOURS)
    base_context: dict[str, Any] | None = None  # a batch's top-level context, under each event's own
    max_depth: int = 64
    min_event_time: datetime = MIN_EVENT_TIME
    received_text: str = field(init=False)
    sent_parsed: datetime | None = field(init=False)
    received_us: int = field(init=False)  # times as microseconds since the epoch: no datetime overflow
    earliest_us: int = field(init=False)
    latest_us: int = field(init=False)
    min_reason: str = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "received_text", iso(self.received_at))
        set_(self, "sent_parsed", parse_time(self.sent_at))
        set_(self, "received_us", micros(self.received_at))
        set_(self, "earliest_us", micros(self.min_event_time))
        set_(self, "latest_us", self.received_us + self.future_tolerance // MICROSECOND)
        set_(self, "min_reason", min_event_time_reason(self.min_event_time))


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware datetime (no offset means UTC); None when it is not one."""
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC; exact for any aware datetime (a timedelta does not overflow here)."""
    return (moment - EPOCH) // MICROSECOND


def too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels in `value`; stops at the first one that does."""
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))
    return False


def preview(value: Any, limit: int = REASON_PREVIEW_CHARS) -> str:
    """At most `limit` characters of a client's value for a reason text, whatever the value is."""
    if type(value) is str:
        return value[:limit]
    try:
        return orjson.dumps(value).decode()[:limit]
    except (TypeError, ValueError):  # a huge int, a non-JSON value
        return f"<{type(value).__name__}>"


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z, as the landing files carry it."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def _identifier(value: Any) -> Any:
    """A user or anonymous id as text (numbers are stringified as the SDKs do); False when unusable."""
    if type(value) is str:
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return False


def event_ids(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    """The userId and anonymousId of an accepted event as its landing line carries them (None when absent)."""
    user_id, anonymous_id = _identifier(raw.get("userId")), _identifier(raw.get("anonymousId"))
    return user_id or None, anonymous_id or None


def prepare(raw: Any, index: int, info: RequestInfo, forced_type: str | None = None) -> Accepted | Rejection:
    """Check one event and build its landing line: receivedAt set, timestamp corrected for clock skew.

    Never raises: anything that goes wrong with one event is that event's rejection (`invalid_event`)."""
    try:
        return _prepare(raw, index, info, forced_type)
    except Exception as error:
        log.warning("event could not be prepared", extra={"index": index, "error_type": type(error).__name__})
        message_id = raw.get("messageId") if type(raw) is dict else None
        return Rejection(
            index,
            "invalid_event",
            f"event could not be processed ({type(error).__name__})",
            message_id if type(message_id) is str else None,
        )


def _prepare(raw: Any, index: int, info: RequestInfo, forced_type: str | None) -> Accepted | Rejection:  # noqa: C901 - older than the complexity rule; split when next changed
    if type(raw) is not dict:
        return Rejection(index, "not_an_object", "event is not a JSON object")
    if too_deep(raw, info.max_depth):
        message_id = raw.get("messageId")
        return Rejection(
            index,
            "too_deep",
            f"event nests objects and arrays more than {info.max_depth} levels deep",
            (message_id.strip() or None) if type(message_id) is str else None,
        )
    get = raw.get
    message_id = get("messageId")
    if type(message_id) is str:
        message_id = message_id.strip()
    elif message_id is None:
        message_id = ""
    elif type(message_id) is int:
        message_id = str(message_id)
    else:
        return Rejection(index, "invalid_message_id", "messageId must be a string")
    known_id = message_id or None

    size = len(orjson.dumps(raw))
    if size > info.max_event_bytes:
        return Rejection(
            index,
            "event_too_large",
            f"event of {size} bytes is over the limit of {info.max_event_bytes} bytes",
            known_id,
        )

    kind = forced_type or get("type")
    if type(kind) is not str or kind not in KNOWN_TYPES:
        if kind is None:
            return Rejection(index, "missing_type", "event has no type", known_id)
        if type(kind) is not str or kind.strip().lower() not in KNOWN_TYPES:
            return Rejection(index, UNKNOWN_TYPE.code, UNKNOWN_TYPE.text + preview(kind), known_id)
        kind = kind.strip().lower()

    user_id = _identifier(get("userId"))
    anonymous_id = _identifier(get("anonymousId"))
    if user_id is False or anonymous_id is False:
        return Rejection(index, "invalid_id", "userId and anonymousId must be strings or numbers", known_id)
    if user_id is None and anonymous_id is None:
        return Rejection(index, "missing_id", "event has neither userId nor anonymousId", known_id)

    properties, traits, context = get("properties"), get("traits"), get("context")
    for name, value in (("properties", properties), ("traits", traits), ("context", context)):
        if value is not None and type(value) is not dict:
            return Rejection(index, NOT_AN_OBJECT.code, name + NOT_AN_OBJECT.text, known_id)

    if kind == "track":
        event_name = get("event")
        if type(event_name) is not str or not event_name.strip():
            return Rejection(index, MISSING_EVENT_NAME.code, MISSING_EVENT_NAME.text, known_id)
        if not EVENT_NAME_RE.fullmatch(event_name.strip()):
            reason = MALFORMED_EVENT_NAME.text + preview(event_name)
            return Rejection(index, MALFORMED_EVENT_NAME.code, reason, known_id)

    sent_text = get("sentAt")
    if sent_text is None:
        sent_text, sent_at = info.sent_at, info.sent_parsed
    else:
        sent_at = parse_time(sent_text)
    original = get("timestamp")
    if original is None:
        moment = info.received_us  # Segment's rule: no timestamp means the time of arrival
    else:
        parsed = parse_time(original)
        if parsed is None:
            reason = UNPARSEABLE_TIMESTAMP.text + preview(original)
            return Rejection(index, UNPARSEABLE_TIMESTAMP.code, reason, known_id)
        moment = micros(parsed)
        if sent_text is not None:
            if sent_at is None:
                return Rejection(index, "bad_sent_at", f"unparseable sentAt: {preview(sent_text)}", known_id)
            # The client's clock may be off: keep its interval between event and send, anchor it at arrival.
            moment = info.received_us - (micros(sent_at) - moment)
    if moment > info.latest_us:
        hours = info.future_tolerance.total_seconds() / 3600
        return Rejection(index, "future_timestamp", f"timestamp more than {hours:g} hours after receivedAt", known_id)
    if moment < info.earliest_us:
        return Rejection(index, TIMESTAMP_BEFORE_MIN_CODE, info.min_reason, known_id)
    timestamp = EPOCH + moment * MICROSECOND  # within [min_event_time, receivedAt + tolerance]: representable

    if kind in API_ONLY_TYPES:
        return Accepted(kind, None)

    if not message_id:
        # A retried request without ids must get the same ids again, so they come from the content.
        digest = hashlib.blake2b(info.source.encode() + b"\0" + orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
        message_id = "collector-" + digest.hexdigest()[:32]

    out = raw.copy()
    for name in DROPPED_FIELDS:
        if name in out:
            del out[name]
    out["messageId"] = message_id
    out["type"] = kind
    if user_id is not None:
        out["userId"] = user_id
    if anonymous_id is not None:
        out["anonymousId"] = anonymous_id
    out["timestamp"] = iso(timestamp)
    out["receivedAt"] = info.received_text
    if original is not None:
        out["originalTimestamp"] = original
    if sent_text is not None:
        out["sentAt"] = sent_text

    context = {**info.base_context, **(context or {})} if info.base_context else dict(context) if context else {}
    if kind == "identify" and traits is None and type(context.get("traits")) is dict:
        out["traits"] = context["traits"]  # RudderStack's SDK sends identify traits inside context
    elif kind == "page" or kind == "screen":
        page_properties = dict(properties) if properties else {}
        for name in ("name", "category"):
            if type(get(name)) is str and name not in page_properties:
                page_properties[name] = raw[name]
        if page_properties:
            out["properties"] = page_properties
    context["collector"] = {"source": info.source, "original_timestamp": original, "sent_at": sent_text}
    out["context"] = context
    return Accepted(kind, orjson.dumps(out))
