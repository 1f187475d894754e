"""One spool line in, one live event out (or the reason it cannot be used).

The collector wrote the line, but its content is the client's: every field is checked and bounded here, so a value
a client controls can make an event skipped (with the file, byte offset and reason in the log), never stop the
consumer or grow a key without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from event_contract import STORED_TYPES
from live.names import event_name

MAX_ID_CHARS = 200  # user, anonymous, message and product ids longer than this are not used as keys
MAX_PRICE = 1e9
MAX_QUANTITY = 10_000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What the live state needs of one event."""

    message_id: str
    user_id: str | None  # the known user, when the event names one
    anonymous_id: str | None
    name: str  # the warehouse's event_name
    at_ms: int  # event time, milliseconds since the epoch (UTC)
    product_id: str | None = None
    price: float | None = None
    quantity: int = 1
    properties: dict[str, str] = field(default_factory=dict)  # the ones live segments filter on, as text

    @property
    def subject(self) -> str:
        """The id the event's state is kept under: the known user, else the anonymous id."""
        return self.user_id or self.anonymous_id  # type: ignore[return-value]  # one is always set


class Skipped(ValueError):
    """A line the live state cannot use; the message is the reason."""


def _identifier(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Skipped(f"{field} is not a string")
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise Skipped(f"{field} is longer than {MAX_ID_CHARS} characters")
    return text or None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _property_text(value: object) -> str | None:
    """A property value as segment filters compare it: text, numbers and booleans (bounded), else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    return text if len(text) <= MAX_ID_CHARS else None


def parse_line(line: bytes, keep_properties: tuple[str, ...] = ()) -> LiveEvent:
    """The live event of one spool line, with the properties named in `keep_properties`; raises Skipped with the
    reason when the line cannot be used."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise Skipped("not JSON") from None
    if type(record) is not dict:
        raise Skipped("not a JSON object")
    kind = record.get("type")
    if kind not in STORED_TYPES:  # what the collector spools
        raise Skipped("unknown type")
    message_id = _identifier(record.get("messageId"), "messageId")
    if message_id is None:
        raise Skipped("no messageId")
    user_id = _identifier(record.get("userId"), "userId")
    anonymous_id = _identifier(record.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise Skipped("neither userId nor anonymousId")
    timestamp = record.get("timestamp")
    try:
        at_ms = int(datetime.fromisoformat(timestamp).timestamp() * 1000) if isinstance(timestamp, str) else None
    except (ValueError, OverflowError):
        at_ms = None
    if at_ms is None:
        raise Skipped("no readable timestamp")
    properties = record.get("properties")
    properties = properties if type(properties) is dict else {}
    product = properties.get("product_id")
    product_id = None
    if isinstance(product, str | int) and not isinstance(product, bool):
        text = str(product).strip()
        product_id = text if 0 < len(text) <= MAX_ID_CHARS else None
    price = _number(properties.get("price"))
    price = price if price is not None and 0 <= price <= MAX_PRICE else None
    quantity = _number(properties.get("quantity"))
    quantity = int(quantity) if quantity is not None and 1 <= quantity <= MAX_QUANTITY else 1
    return LiveEvent(
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        name=event_name(kind, record.get("event")),
        at_ms=at_ms,
        product_id=product_id,
        price=price,
        quantity=quantity,
        properties={
            name: text
            for name in keep_properties
            if name in properties and (text := _property_text(properties[name])) is not None
        },
    )
