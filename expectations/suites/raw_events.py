"""raw.events: what ingestion promises about every row it loaded (a second line behind its row-level rejects)."""

import great_expectations as gx

from event_contract import EVENT_NAME_PATTERN, FUTURE_TOLERANCE_HOURS, MAX_ABS_REVENUE, STORED_TYPES
from expectations.suites import SuiteSpec
from settings import load as load_settings


def build() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="raw_events")
    for column in ("message_id", "type", "timestamp", "received_at", "source_file", "loaded_at"):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="message_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="any_user_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column="type", value_set=list(STORED_TYPES)))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="track_event"))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToMatchRegex(column="event", regex=f"^{EVENT_NAME_PATTERN}$")
    )
    # the contract's default tolerance, not the FUTURE_TOLERANCE_HOURS setting
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="hours_ahead", max_value=FUTURE_TOLERANCE_HOURS)
    )
    # the same lower bound as ingestion's MIN_EVENT_TIME, read when the suite is built (each validation): the value
    # goes into the expectation, never into the relation's SQL; a suite is built by name, so nothing hands it one
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="timestamp_epoch_seconds", min_value=load_settings().contract.min_event_time.timestamp()
        )
    )
    # computed in SQL: GX's pandas JsonParseable calls json.loads once a row (66 s of the gate at 10M events)
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeNull(column="properties_not_json"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeNull(column="revenue_not_numeric"))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="order_revenue", min_value=0, max_value=MAX_ABS_REVENUE)
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="refund_revenue", min_value=-MAX_ABS_REVENUE, max_value=0)
    )
    return suite


SPEC = SuiteSpec(
    name="raw_events",
    # Derived columns make the rules one expectation each: any_user_id is null only when both ids are;
    # track_event is null only for a track call without event; order/refund revenue only on those events.
    relation="""(
        select
            message_id, type, event, timestamp, received_at, source_file, loaded_at,
            case when not json_valid(cast(properties as varchar)) then left(cast(properties as varchar), 200) end
                as properties_not_json,
            coalesce(user_id, anonymous_id) as any_user_id,
            case when type = 'track' then event else 'not a track call' end as track_event,
            date_diff('second', received_at, timestamp) / 3600.0 as hours_ahead,
            epoch(timestamp) as timestamp_epoch_seconds,
            case when json_type(properties, '$.revenue') not in ('NULL')
                  and try_cast(json_extract_string(properties, '$.revenue') as double) is null
                 then json_extract_string(properties, '$.revenue') end as revenue_not_numeric,
            case when lower(regexp_replace(event, '[^A-Za-z0-9]', '', 'g')) = 'ordercompleted'
                 then try_cast(json_extract_string(properties, '$.revenue') as double) end as order_revenue,
            case when lower(regexp_replace(event, '[^A-Za-z0-9]', '', 'g')) = 'orderrefunded'
                 then try_cast(json_extract_string(properties, '$.revenue') as double) end as refund_revenue
        from raw.events
    )""",
    partition_key="message_id",
    build=build,
)
