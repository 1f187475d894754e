"""The whole graph materialised in process by Dagster on a small generated event set."""

from __future__ import annotations

import dagster as dg
import pytest

from demo_events import GeneratorConfig, generate
from tests.conftest import query

pytestmark = pytest.mark.slow


def test_materialize_everything_on_generated_events(data_dir, monkeypatch):
    truth = generate(GeneratorConfig(users=300, seed=7, months=3, file_rows=4000), data_dir)
    # The generator renames each finished file into place, so nothing needs to settle.
    monkeypatch.setenv("SETTLE_SECONDS", "0")
    from orchestration.definitions import defs

    job = defs().resolve_job_def("materialize_everything")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)

    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert {"raw/events", "staging/stg_events", "marts/cohort_retention"} <= materialized
    evaluations = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert len(evaluations) >= 25 and all(evaluation.passed for evaluation in evaluations)

    rows_in, loaded, duplicate, rejected = query(
        data_dir,
        "select sum(rows_in), sum(rows_loaded), sum(rows_duplicate), sum(rows_rejected) from raw.load_manifest",
    )[0]
    assert rows_in == truth.rows_written == loaded + duplicate + rejected
    assert (loaded, duplicate) == (truth.expected_unique_events, truth.expected_duplicate_rows)
    assert rejected == sum(truth.expected_rejects.values())

    # Every generated user is active at least once, so weekly cohorts together hold every user exactly once.
    cohort_users = query(
        data_dir,
        "select sum(cohort_size) from marts.cohort_retention where grain = 'week' and period_number = 0",
    )
    assert cohort_users == [(truth.users,)]
