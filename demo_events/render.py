"""Rows of one file as Segment-spec records: numpy builds the columns, DuckDB writes the text.

JSON lines come out as one string per row (keys that have no value are left out); CSV and Parquet get the
same fields as columns, with properties, traits and context as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_events import events as ev
from demo_events.arrival import Arrival
from demo_events.config import (
    CAMPAIGN_MEDIUM,
    CAMPAIGNS,
    CHANNELS,
    COUNTRIES,
    COUPONS,
    DEVICES,
    EMAIL_NAMES,
    FACTORIAL_VARIANTS,
    FEATURES,
    LOCALES,
    OPERATING_SYSTEMS,
    PAGES,
    PLANS,
    SEARCH_QUERIES,
    VARIANTS,
)
from demo_events.dirty import BAD_TIMESTAMPS, CODE, FUTURE_YEAR, UNKNOWN_TYPES, Defects
from demo_events.events import Events
from demo_events.ids import USER_ID_SQL, anonymous_ids, message_ids
from demo_events.population import Users

TYPES = (*ev.CALL_TYPES, *UNKNOWN_TYPES)
FUTURE_SHIFT_MS = (
    round((datetime(FUTURE_YEAR, 1, 1, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds()) * 1000
)
FIELDS = ("message_id", "type", "event", "user_id", "anonymous_id", "timestamp", "received_at",
          "properties", "traits", "context")  # fmt: skip
OBJECT_FIELDS = ("properties", "traits", "context")
CAMEL = {
    "message_id": "messageId",
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "received_at": "receivedAt",
}


@dataclass
class Source:
    """Everything a file's rows are rendered from."""

    events: Events
    arrival: Arrival
    users: Users
    defects: Defects
    seed: int
    experiment_id: str
    factorial_id: str


def _offset_text(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _lit(values: tuple[str, ...] | list[str]) -> str:
    """A DuckDB list literal of fixed vocabulary (checked to need no escaping in SQL or JSON)."""
    for value in values:
        if any(ch in value for ch in "'\"\\") or not value.isprintable():
            raise ValueError(f"vocabulary value needs escaping: {value!r}")
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


_PER_CHANNEL = len(next(iter(CAMPAIGNS.values())))
_LOCALE = f"{_lit([LOCALES[c] for c in COUNTRIES])}[country + 1]"
_CAMPAIGN = f"channel * {_PER_CHANNEL} + campaign + 1"
# Per user: the id, and the context object in its three shapes (plain, first session, system email).
USER_SQL = f"""
select
    {USER_ID_SQL.format(column="uidx")} as user_id,
    '{{"device":{{"type":"' || {_lit(DEVICES)}[device + 1] || '"}},"os":{{"name":"'
        || {_lit(OPERATING_SYSTEMS)}[os + 1] || '"}},"locale":"' || {_LOCALE} || '"' as context_head,
    ',"campaign":{{"source":"' || {_lit([s for c in CHANNELS for s, _ in CAMPAIGNS[c]])}[{_CAMPAIGN}]
        || '","medium":"' || {_lit([CAMPAIGN_MEDIUM[c] for c in CHANNELS])}[channel + 1]
        || '","name":"' || {_lit([n for c in CHANNELS for _, n in CAMPAIGNS[c]])}[{_CAMPAIGN}]
        || '"}}' as campaign,
    '{{"library":{{"name":"email-service"}},"locale":"' || {_LOCALE} || '"}}' as context_email,
    '{{"email":"user' || (uidx + 1)::varchar || '@example.com","plan":"' || {_lit(PLANS)}[plan + 1]
        || '","signup_channel":"' || {_lit(list(CHANNELS))}[channel + 1]
        || '","country":"' || {_lit(list(COUNTRIES))}[country + 1] || '"}}' as traits
from users
order by uidx
"""


def _properties_sql(experiment_id: str, factorial_id: str) -> str:
    """JSON text of `properties` by event kind (NULL for identify)."""
    _lit([experiment_id, factorial_id])  # checks that they need no escaping
    product = "format('prod_{:03d}', product + 1)"
    # a product's list price, fixed by its number (5.00 to 204.99): what the live cart adds up
    price = "(5 + ((product::integer * 7919) % 20000) / 100)::decimal(18, 2)::varchar"
    money = "(cents / 100)::decimal(18, 2)::varchar"
    order_id = "format('ord_{:09d}', order_no + 1)"
    coupon = f"{_lit(COUPONS)}[attr + 1]"
    return f"""case kind
        when {ev.PAGE} then concat('{{"name":"', {_lit(PAGES)}[attr + 1], '"}}')
        when {ev.SIGNED_UP} then concat('{{"plan":"', {_lit(PLANS)}[plan + 1], '"}}')
        when {ev.PRODUCT_VIEWED} then concat('{{"product_id":"', {product}, '","price":', {price}, '}}')
        when {ev.PRODUCT_ADDED} then concat('{{"product_id":"', {product}, '","price":', {price}, ',"quantity":1}}')
        when {ev.ORDER_COMPLETED} then concat('{{"order_id":"', {order_id}, '","product_id":"', {product},
            '","revenue":', {money}, ',"currency":"USD"', ',"coupon":"' || {coupon} || '"', '}}')
        when {ev.ORDER_REFUNDED} then concat('{{"order_id":"', {order_id}, '","product_id":"', {product},
            '","revenue":', {money}, ',"currency":"USD"}}')
        when {ev.FEATURE_USED} then concat('{{"feature":"', {_lit(FEATURES)}[attr + 1], '"}}')
        when {ev.SEARCH_PERFORMED} then concat('{{"query":"', {_lit(SEARCH_QUERIES)}[attr + 1], '"}}')
        when {ev.EXPERIMENT_VIEWED} then case when attr < 2
            then concat('{{"experiment_id":"{experiment_id}","variant":"', {_lit(VARIANTS)}[attr + 1], '"}}')
            else concat('{{"experiment_id":"{factorial_id}","variant":"', {_lit(FACTORIAL_VARIANTS)}[attr - 1], '"}}')
            end
        when {ev.PLAN_UPGRADED} then concat('{{"plan":"pro","previous_plan":"', {_lit(PLANS)}[plan + 1], '"}}')
        when {ev.EMAIL_SENT} then concat('{{"email_name":"', {_lit(EMAIL_NAMES)}[attr + 1], '"}}')
        when {ev.COUPON_APPLIED} then concat('{{"coupon":"', {coupon}, '"}}')
    end"""


def _field_sql(experiment_id: str, factorial_id: str) -> dict[str, str]:
    """SQL giving each field's text over a batch (JSON text for the three objects); NULL when absent."""
    iso = "'%Y-%m-%dT%H:%M:%S.%g'"
    event_names = [name or "" for name in ev.EVENT_NAMES]
    return {
        "message_id": "mid",
        "type": f"{_lit(TYPES)}[type_code + 1]",
        "event": f"{_lit(event_names)}[ev_code + 1]",
        "user_id": "user_id",
        "anonymous_id": "aid",
        "timestamp": f"coalesce({_lit(BAD_TIMESTAMPS)}[bad_code + 1], "
        f"strftime(make_timestamp(ts_local * 1000), {iso}) || off_text)",
        "received_at": f"strftime(make_timestamp(recv * 1000), {iso}) || 'Z'",
        "properties": _properties_sql(experiment_id, factorial_id),
        "traits": "traits",
        "context": "context",
    }


def field_names(camel: bool) -> list[str]:
    """Output field names in order, snake_case or Segment's camelCase export style."""
    return [CAMEL.get(name, name) if camel else name for name in FIELDS]


class Renderer:
    """Renders rows of a Source as JSON-lines bytes or Arrow tables, with one DuckDB connection.

    Text that only depends on the user (ids, context, traits) is built once per user and gathered per row.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.con = duckdb.connect()
        self.exprs = _field_sql(source.experiment_id, source.factorial_id)
        users = source.users
        n = len(users)
        self.con.register(
            "users",
            pa.table({"uidx": np.arange(n), "plan": users.plan, "channel": users.channel,
                      "campaign": users.campaign, "country": users.country, "device": users.device,
                      "os": users.os}),
        )  # fmt: skip
        text = self.con.sql(USER_SQL).to_arrow_table()
        self.con.unregister("users")
        self.user_ids = text.column("user_id").combine_chunks()
        self.anonymous_ids = anonymous_ids(np.arange(n), source.seed)
        head = text.column("context_head").combine_chunks()
        plain = pc.binary_join_element_wise(head, "}", "")
        first = pc.binary_join_element_wise(head, text.column("campaign").combine_chunks(), "}", "")
        # Contexts of user u at 3u (plain), 3u + 1 (first session, with campaign), 3u + 2 (system email).
        self.contexts = pc.take(
            pa.concat_arrays([plain, first, text.column("context_email").combine_chunks()]),
            pa.array((np.arange(n)[:, None] + np.array([0, n, 2 * n])).ravel()),
        )
        self.traits = text.column("traits").combine_chunks()

    def close(self) -> None:
        """Release the DuckDB connection."""
        self.con.close()

    def batch(self, row_ids: np.ndarray) -> pa.Table:
        """The columns the SQL reads for rows `row_ids` (clean row, or n_clean + defect index)."""
        src = self.source
        e, n_clean = src.events, len(src.events)
        clean = row_ids < n_clean
        if len(src.defects):
            d = np.where(clean, 0, row_ids - n_clean)
            defect = np.where(clean, 0, src.defects.code[d])
            row = np.where(clean, row_ids, src.defects.src[d])
            msg_no = np.where(clean, row_ids, src.defects.msg_no[d])
        else:
            defect, row, msg_no = np.zeros(len(row_ids), np.int8), row_ids, row_ids
        user = e.user[row]
        kind = e.kind[row]
        anon = e.anon[row]

        type_code = ev.call_types(kind, anon, src.users.device[user] != DEVICES.index("desktop"))
        unknown = defect == CODE["unknown_type"]
        type_code[unknown] = 4 + msg_no[unknown] % len(UNKNOWN_TYPES)
        no_event = (kind == ev.PAGE) | (kind == ev.IDENTIFY) | (defect == CODE["track_without_event"])
        no_ids = defect == CODE["missing_user_ids"]
        bad = defect == CODE["bad_timestamp"]
        shape = np.where(kind == ev.EMAIL_SENT, 2, e.first[row].astype(np.int64))

        ts = e.ts[row] + np.where(defect == CODE["future_timestamp"], FUTURE_SHIFT_MS, 0)
        offset = src.arrival.offset_min[row]
        offsets = np.unique(offset)
        offset_text = np.array([_offset_text(o) for o in offsets])[np.searchsorted(offsets, offset)]
        columns = {
            "mid": message_ids(msg_no, src.seed),
            "user_id": pc.take(self.user_ids, pa.array(user, mask=anon | no_ids)),
            "aid": pc.take(self.anonymous_ids, pa.array(user, mask=no_ids)),
            "type_code": pa.array(type_code),
            "ev_code": pa.array(kind, mask=no_event),
            "ts_local": pa.array(ts + offset.astype(np.int64) * 60_000),
            "off_text": pa.array(offset_text),
            "bad_code": pa.array((msg_no % len(BAD_TIMESTAMPS)).astype(np.int8), mask=~bad),
            "recv": pa.array(src.arrival.received_ms[row]),
            "kind": pa.array(kind),
            "attr": pa.array(e.attr[row]),
            "product": pa.array(e.product[row]),
            "cents": pa.array(e.cents[row]),
            "order_no": pa.array(e.order[row]),
            "plan": pa.array(src.users.plan[user]),
            "traits": pc.take(self.traits, pa.array(user, mask=(kind != ev.IDENTIFY) | no_ids)),
            "context": pc.take(self.contexts, pa.array(user.astype(np.int64) * 3 + shape)),
        }
        return pa.table(columns)

    def lines(self, batch: pa.Table, camel: bool) -> bytes:
        """One JSON object per line, newline-terminated, keys without a value left out."""
        names = dict(zip(FIELDS, field_names(camel), strict=True))
        # concat() skips NULL pieces, which leaves absent keys out. "type" is always there, so it follows
        # message_id (which may be missing) without a comma, and message_id carries its own.
        pieces = [f"""'"{names["message_id"]}":"' || ({self.exprs["message_id"]}) || '",'"""]
        for field in FIELDS[1:]:
            sep = "" if field == "type" else ","
            if field in OBJECT_FIELDS:
                pieces.append(f"""'{sep}"{names[field]}":' || ({self.exprs[field]})""")
            else:
                pieces.append(f"""'{sep}"{names[field]}":"' || ({self.exprs[field]}) || '"'""")
        sql = "select concat('{', " + ", ".join(pieces) + ", '}', chr(10)) as line from batch"
        column = self._run(batch, sql).column("line")
        return b"".join(_string_bytes(chunk) for chunk in column.chunks)

    def table(self, batch: pa.Table, camel: bool) -> pa.Table:
        """The fields as string columns (objects as JSON text), nulls where a field is absent."""
        pairs = zip(FIELDS, field_names(camel), strict=True)
        select = ", ".join(f'({self.exprs[field]}) as "{name}"' for field, name in pairs)
        return self._run(batch, f"select {select} from batch").combine_chunks()

    def _run(self, batch: pa.Table, sql: str) -> pa.Table:
        self.con.register("batch", batch)
        try:
            return self.con.sql(sql).to_arrow_table()
        finally:
            self.con.unregister("batch")


def _string_bytes(chunk: pa.Array) -> memoryview:
    """The concatenated values of a string array, straight from its data buffer."""
    if pa.types.is_string_view(chunk.type):
        chunk = chunk.cast(pa.large_string())
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
    if len(offsets) == 0:
        return memoryview(b"")
    return memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
