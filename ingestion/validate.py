"""The contract's row-level rules, as one DuckDB query over a registered Arrow batch named `batch`.

Fixed SQL text only: the contract's names and reason texts (event_contract) are written into it once, at import;
thresholds arrive as bound parameters (see `validate_params`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from event_contract import (
    DEFAULT_TYPE,
    EVENT_NAME_PATTERN,
    MALFORMED_EVENT_NAME,
    MAX_ABS_REVENUE,
    MIN_EVENT_TIME,
    MISSING_EVENT_NAME,
    NOT_AN_OBJECT,
    REASON_PREVIEW_CHARS,
    STORED_TYPES,
    UNKNOWN_TYPE,
    UNPARSEABLE_TIMESTAMP,
    min_event_time_reason,
)


def _sql_text(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# Fields of a JSON line; both naming styles of the contract are accepted.
_LINE_FIELDS = """
    select
        line_number,
        raw_line,
        coalesce(
            pre_reason,
            case when not is_json then 'not valid JSON'
                 when json_type(raw_line) <> 'OBJECT' then 'not a JSON object' end
        ) as parse_reason,
        coalesce(texts[1], texts[2]) as message_id,
        coalesce(texts[3], texts[4]) as user_id,
        coalesce(texts[5], texts[6]) as anonymous_id,
        texts[7] as type_text,
        texts[8] as event,
        texts[9] as timestamp_text,
        coalesce(texts[10], texts[11]) as received_text,
        nested[1] as properties,
        nested[2] as traits,
        nested[3] as context,
        false as properties_unparseable,
        false as traits_unparseable,
        false as context_unparseable
    from (
        select
            *,
            -- one parse per line for all fields: the list forms of json_extract read the document once
            json_extract_string(case when is_json then raw_line end, [
                '$.message_id', '$.messageId', '$.user_id', '$.userId', '$.anonymous_id', '$.anonymousId',
                '$.type', '$.event', '$.timestamp', '$.received_at', '$.receivedAt'
            ]) as texts,
            json_extract(case when is_json then raw_line end, ['$.properties', '$.traits', '$.context']) as nested
        from (select *, pre_reason is null and json_valid(raw_line) as is_json from batch)
    )
"""

# Fields of a CSV/Parquet row: already split into columns, nested fields arrive as JSON text.
_TABLE_FIELDS = """
    select
        line_number,
        coalesce(raw_line, case when pre_reason is null then json_object(
            'message_id', message_id, 'user_id', user_id, 'anonymous_id', anonymous_id, 'type', type,
            'event', event, 'timestamp', timestamp, 'received_at', received_at,
            'properties', properties, 'traits', traits, 'context', context)::varchar end) as raw_line,
        pre_reason as parse_reason,
        message_id,
        user_id,
        anonymous_id,
        type as type_text,
        event,
        timestamp as timestamp_text,
        received_at as received_text,
        case when json_valid(properties) then properties::json end as properties,
        case when json_valid(traits) then traits::json end as traits,
        case when json_valid(context) then context::json end as context,
        properties is not null and not json_valid(properties) as properties_unparseable,
        traits is not null and not json_valid(traits) as traits_unparseable,
        context is not null and not json_valid(context) as context_unparseable
    from batch
"""

_CHECKS_TEMPLATE = """
, cleaned as (
    select
        * exclude (message_id, user_id, anonymous_id, event, properties, traits, context),
        nullif(trim(message_id), '') as message_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(event), '') as event,
        lower(coalesce(nullif(trim(type_text), ''), {default_type})) as type,
        try_cast(timestamp_text as timestamptz) at time zone 'UTC' as event_ts,
        try_cast(received_text as timestamptz) at time zone 'UTC' as received_ts,
        case when json_type(properties) <> 'NULL' then properties end as properties,
        case when json_type(traits) <> 'NULL' then traits end as traits,
        case when json_type(context) <> 'NULL' then context end as context,
        json_type(properties, '$.revenue') as revenue_type,
        try_cast(json_extract_string(properties, '$.revenue') as double) as revenue,
        -- "Order Completed", "order_completed", "orderCompleted" alike
        lower(regexp_replace(coalesce(event, ''), '[^A-Za-z0-9]', '', 'g')) as event_key
    from fields
)
, checked as (
    select
        *,
        case
            when parse_reason is not null then parse_reason
            when message_id is null then 'missing message_id'
            when user_id is null and anonymous_id is null then 'missing both user_id and anonymous_id'
            when timestamp_text is null then 'missing timestamp'
            -- 'infinity' parses, but is no time an event happened at
            when event_ts is null or not isfinite(event_ts)
                then {unparseable_timestamp} || left(timestamp_text, {preview})
            when event_ts < $min_event_time then $min_event_time_reason
            when received_text is not null and (received_ts is null or not isfinite(received_ts))
                then 'unparseable received_at: ' || left(received_text, {preview})
            -- received_at comes from the file too: bounded, so that it cannot carry the timestamp's bound away
            when received_ts > $loaded_at + to_microseconds($tolerance_us)
                then 'received_at more than ' || $tolerance_hours || ' hours after load time'
            -- in epoch seconds (double): timestamp arithmetic near the ends of the range would overflow
            when epoch(event_ts) - epoch(coalesce(received_ts, $loaded_at)) > $tolerance_seconds
                -- no timestamp in the text: one reason per rule keeps "group by reason" useful
                then 'timestamp more than ' || $tolerance_hours || ' hours after '
                     || case when received_ts is null then 'load time' else 'received_at' end
            when type not in ({stored_types}) then {unknown_type} || left(type, {preview})
            when type = 'track' and event is null then {missing_event_name}
            when properties_unparseable then 'properties is not valid JSON'
            when traits_unparseable then 'traits is not valid JSON'
            when context_unparseable then 'context is not valid JSON'
            when properties is not null and json_type(properties) <> 'OBJECT' then {properties_not_an_object}
            when traits is not null and json_type(traits) <> 'OBJECT' then {traits_not_an_object}
            when context is not null and json_type(context) <> 'OBJECT' then {context_not_an_object}
            when strlen(properties::varchar) > $max_property_bytes
                then 'properties blob of ' || strlen(properties::varchar) || ' bytes is over the limit of '
                     || $max_property_bytes || ' bytes'
            when type = 'track' and not regexp_full_match(event, $event_name_pattern)
                then {malformed_event_name} || left(event, {preview})
            when revenue_type is not null and revenue_type <> 'NULL' and revenue is null
                then 'revenue is not a number: ' || left(json_extract_string(properties, '$.revenue'), {preview})
            -- 'NaN', 'Infinity' and 1e400 cast to a double; NaN would otherwise pass as beyond the limit
            when isnan(revenue) or isinf(revenue)
                then 'revenue is not a finite number: ' || left(json_extract_string(properties, '$.revenue'), {preview})
            when event_key = 'ordercompleted' and revenue < 0
                then 'negative revenue on an order (only refunds may be negative)'
            when event_key = 'orderrefunded' and revenue > 0 then 'positive revenue on a refund'
            when abs(revenue) > $max_abs_revenue then 'revenue beyond the limit of ' || $max_abs_revenue
        end as reason
    from cleaned
)
select
    line_number,
    reason,
    -- the first bytes only: the first max_raw_line_bytes characters when they fit, else a quarter as many
    case when reason is null then null
         when strlen(raw_line) <= $max_raw_line_bytes then raw_line
         when strlen(left(raw_line, $max_raw_line_bytes)) <= $max_raw_line_bytes
             then left(raw_line, $max_raw_line_bytes)
         else left(raw_line, $max_raw_line_bytes // 4) end as raw_line,
    message_id,
    user_id,
    anonymous_id,
    type,
    event,
    event_ts as timestamp,
    coalesce(received_ts, $loaded_at) as received_at,
    properties,
    traits,
    context
from checked
"""

_CHECKS = _CHECKS_TEMPLATE.format(
    default_type=_sql_text(DEFAULT_TYPE),
    stored_types=", ".join(_sql_text(kind) for kind in STORED_TYPES),
    preview=REASON_PREVIEW_CHARS,
    unparseable_timestamp=_sql_text(UNPARSEABLE_TIMESTAMP.text),
    unknown_type=_sql_text(UNKNOWN_TYPE.text),
    missing_event_name=_sql_text(MISSING_EVENT_NAME.text),
    malformed_event_name=_sql_text(MALFORMED_EVENT_NAME.text),
    **{f"{name}_not_an_object": _sql_text(name + NOT_AN_OBJECT.text) for name in ("properties", "traits", "context")},
)
VALIDATE_LINES_SQL = "with fields as (" + _LINE_FIELDS + ")" + _CHECKS
VALIDATE_TABLE_SQL = "with fields as (" + _TABLE_FIELDS + ")" + _CHECKS


def validate_params(
    loaded_at: datetime,
    tolerance_hours: float,
    max_property_bytes: int,
    *,
    min_event_time: datetime = MIN_EVENT_TIME,
    max_raw_line_bytes: int = 64 * 1024,
) -> dict[str, object]:
    """Named parameters for the validation query."""
    floor = min_event_time.astimezone(UTC).replace(tzinfo=None) if min_event_time.tzinfo else min_event_time
    return {
        "loaded_at": loaded_at,
        "tolerance_us": int(tolerance_hours * 3_600_000_000),
        "tolerance_seconds": tolerance_hours * 3600.0,
        "tolerance_hours": f"{tolerance_hours:g}",
        "min_event_time": floor,
        "min_event_time_reason": min_event_time_reason(min_event_time),
        "max_raw_line_bytes": max_raw_line_bytes,
        "max_property_bytes": max_property_bytes,
        "event_name_pattern": EVENT_NAME_PATTERN,
        "max_abs_revenue": MAX_ABS_REVENUE,
    }
