"""The event input contract (docs/input_contract.md) in code, once, for the collector, ingestion and the suites.

Plain Python with no dependencies beyond the standard library: field names, call types, the event-name pattern,
the bounds' defaults and the reason texts both the collector and ingestion answer with. The rules themselves are
applied by each side in its own way (Python per event in the collector, one SQL query per batch in ingestion).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

# -- fields ---------------------------------------------------------------------------------------------------

# The contract's fields in snake_case, in the order ingestion's readers lay them out.
FIELDS = (
    "message_id",
    "user_id",
    "anonymous_id",
    "type",
    "event",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "context",
)
# Segment's camelCase spelling of the snake_case fields that have one; either is accepted.
CAMEL_CASE = {
    "message_id": "messageId",
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "received_at": "receivedAt",
}
REQUIRED_FIELDS = ("message_id", "timestamp")
ID_FIELDS = ("user_id", "anonymous_id")  # at least one of them
OBJECT_FIELDS = ("properties", "traits", "context")  # JSON objects when present

# -- call types -----------------------------------------------------------------------------------------------

DEFAULT_TYPE = "track"
# The types a landing file may carry, stored in raw.events.
STORED_TYPES = ("track", "page", "screen", "identify")
# Calls of Segment's Tracking API the collector answers and counts but never writes to landing (ingestion would
# reject them as an unknown type).
API_ONLY_TYPES = ("group", "alias")

# -- event name -----------------------------------------------------------------------------------------------

EVENT_NAME_MAX_CHARS = 200
# A well-formed event name as apps send it: starts with a letter or digit, then letters, digits, spaces and a
# little punctuation, at most EVENT_NAME_MAX_CHARS characters. ASCII classes only and no anchors, so that Python's
# `re.fullmatch` and DuckDB's `regexp_full_match` (RE2) read it the same way (tests/test_collector.py).
EVENT_NAME_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9 _.:/&()'-]{{0,{EVENT_NAME_MAX_CHARS - 1}}}"
EVENT_NAME_RE = re.compile(EVENT_NAME_PATTERN)

# -- bounds: MIN_EVENT_TIME and FUTURE_TOLERANCE_HOURS are the defaults of the settings of those names ---------

MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE_HOURS = 24  # hours after received_at (or load time) an event may be dated
MAX_PROPERTY_BYTES = 1_048_576  # 1 MiB of properties JSON text
MAX_ABS_REVENUE = 1_000_000

# -- reasons both sides give ----------------------------------------------------------------------------------

# How many characters of a client's value a reason text quotes.
REASON_PREVIEW_CHARS = 80


class Reason(NamedTuple):
    """A rule's reason: `code` is the collector's metrics label, `text` the words (a prefix where a value follows)."""

    code: str
    text: str


MISSING_EVENT_NAME = Reason("missing_event_name", "track event without an event name")
MALFORMED_EVENT_NAME = Reason("malformed_event_name", "malformed event name: ")  # + the name
UNKNOWN_TYPE = Reason("unknown_type", "unknown type: ")  # + the type
UNPARSEABLE_TIMESTAMP = Reason("bad_timestamp", "unparseable timestamp: ")  # + the timestamp
NOT_AN_OBJECT = Reason("field_not_an_object", " is not a JSON object")  # after the field's name
# The start of the reason of an event dated before MIN_EVENT_TIME; see `min_event_time_reason`.
MIN_EVENT_TIME_REASON = "timestamp before min_event_time"
TIMESTAMP_BEFORE_MIN_CODE = "timestamp_before_min"


def min_event_time_reason(min_event_time: datetime) -> str:
    """The reason for an event dated before `min_event_time` (naive means UTC), in UTC:
    'timestamp before min_event_time 2000-01-01T00:00:00Z' (microseconds only when it has some)."""
    moment = min_event_time.astimezone(UTC) if min_event_time.tzinfo else min_event_time
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return f"{MIN_EVENT_TIME_REASON} {text}Z"
