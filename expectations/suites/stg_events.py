"""staging.stg_events: the typed, deduplicated, stitched events every model reads."""

import great_expectations as gx

from expectations.suites import SuiteSpec

# snake_case, or the '(invalid)' staging gives a row whose name normalises to nothing (flagged as unnamed_event in
# marts.data_health_flags, so it is not this check's to block)
EVENT_NAME = r"^([a-z0-9]+(_[a-z0-9]+)*|\(invalid\))$"


def build() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="stg_events")
    for column in ("message_id", "user_id", "event_name", "event_at", "event_date", "is_activity"):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="message_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(column="event_name", regex=EVENT_NAME))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=["track", "page", "screen", "identify"]
        )
    )
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="order_revenue", min_value=0))
    return suite


SPEC = SuiteSpec(
    name="stg_events",
    relation="""(
        select
            message_id, user_id, event_name, event_type, event_at, event_date, is_activity, staged_at,
            case when event_name = 'order_completed' then revenue end as order_revenue
        from staging.stg_events
    )""",
    partition_key="message_id",
    build=build,
    watermark_column="staged_at",
)
