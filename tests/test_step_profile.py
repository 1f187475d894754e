"""The step-profile hook and bench.profile, on a real (small) Dagster run in a real instance."""

from __future__ import annotations

import time

import dagster as dg

from bench.profile import run_profile
from orchestration.step_profile import step_profile


@dg.asset
def busy() -> dg.MaterializeResult:
    """About 0.4 s of CPU."""
    started = time.process_time()
    while time.process_time() - started < 0.4:
        sum(range(10_000))
    return dg.MaterializeResult(metadata={"dagster/row_count": 7})


@dg.asset(deps=[busy])
def idle() -> None:
    """About 0.5 s of waiting, next to no CPU."""
    time.sleep(0.5)


def test_each_step_gets_its_wall_time_cpu_and_rows(tmp_path):
    job = dg.define_asset_job("profiled", selection=[busy, idle], hooks={step_profile})
    defs = dg.Definitions(assets=[busy, idle], jobs=[job])
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = defs.resolve_job_def("profiled").execute_in_process(instance=instance)
    assert result.success

    profile = run_profile(str(tmp_path), "profiled")

    steps = {step["step"]: step for step in profile["steps"]}
    assert set(steps) == {"busy", "idle"} and profile["status"] == "SUCCESS"
    assert steps["busy"]["rows"] == 7 and steps["idle"]["rows"] == 0
    # in one process the CPU counts from the previous step's end: busy's includes the run's start-up
    assert steps["busy"]["cpu_s"] >= 0.4
    assert steps["idle"]["wall_s"] >= 0.5 and steps["idle"]["cpu_s"] < 0.3
    assert steps["busy"]["peak_mb"] > 0 and steps["idle"]["peak_mb"] >= steps["busy"]["peak_mb"]
    assert profile["steps"][0]["wall_s"] >= profile["steps"][1]["wall_s"]  # slowest first
