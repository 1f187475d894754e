"""Great Expectations suites (one per dataset, in suites/) and the code that runs them; never imports dagster."""

from expectations.runner import ExpectationOutcome, SuiteRunner, ValidationOutcome
from expectations.suites import SUITES, SuiteSpec

__all__ = ["SUITES", "ExpectationOutcome", "SuiteRunner", "SuiteSpec", "ValidationOutcome"]
