"""marts.cohort_retention: rates are shares, counts nest, one row per key."""

import great_expectations as gx

from expectations.suites import SuiteSpec


def build() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="cohort_retention")
    suite.add_expectation(
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["grain", "cohort_start", "period_number"])
    )
    for column in ("retention_rate", "retention_rate_unbounded"):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1))
    suite.add_expectation(
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="cohort_size", column_B="retained_users_unbounded", or_equal=True
        )
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="retained_users_unbounded", column_B="retained_users", or_equal=True
        )
    )
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="is_complete"))
    return suite


SPEC = SuiteSpec(
    name="cohort_retention",
    relation="marts.cohort_retention",
    partition_key="grain, cohort_start, period_number",
    build=build,
)
