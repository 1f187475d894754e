"""marts.daily_kpis: one row a day and the identities DAU <= WAU <= MAU."""

import great_expectations as gx

from expectations.suites import SuiteSpec


def build() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="daily_kpis")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="activity_date"))
    suite.add_expectation(
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(column_A="wau", column_B="dau", or_equal=True)
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(column_A="mau", column_B="wau", or_equal=True)
    )
    for column in ("stickiness", "conversion_rate"):
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="orders", min_value=0))
    return suite


SPEC = SuiteSpec(name="daily_kpis", relation="marts.daily_kpis", partition_key="activity_date", build=build)
