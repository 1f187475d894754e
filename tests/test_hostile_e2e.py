"""The whole graph on generated events plus every hostile file a client or a dropped file can bring
(demo_events.hostile): the run succeeds, each hostile row ends up rejected or flagged, and a clean file that lands
after the hostile ones reaches the serving copy."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from demo_events import GeneratorConfig, generate
from demo_events.hostile import HOSTILE_FOLDER, HostilePlan, plant_hostile
from tests.conftest import query

pytestmark = pytest.mark.slow

HUGE_LINE_BYTES = 64 << 20  # far over the default max_line_bytes (4 MiB), and it must never be held whole
SECRET = "root:x:0:0"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HostilePlan, dg.ExecuteInProcessResult]:
    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "data"
    generate(GeneratorConfig(users=200, seed=11, months=3, file_rows=5000), data_dir)
    secret = root / "outside" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text(f'{{"message_id": "leak", "user_id": "{SECRET}", "timestamp": "2026-10-01T10:00:00Z"}}\n')
    plan = plant_hostile(data_dir / "landing", huge_line_bytes=HUGE_LINE_BYTES, link_target=secret)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(data_dir))
        env.setenv("SETTLE_SECONDS", "0")
        from orchestration.definitions import defs

        job = defs().resolve_job_def("materialize_everything")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
    return data_dir, plan, result


def test_the_run_succeeds_and_the_clean_file_reaches_the_serving_copy(hostile_run):
    data_dir, plan, result = hostile_run
    failed = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert result.success, failed
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        users = {row[0] for row in con.execute("select user_id from marts.user_segments").fetchall()}
    assert {plan.clean_user, *plan.users_kept} <= users
    assert not (plan.users_rejected | {SECRET}) & users


def test_every_hostile_row_is_rejected_with_its_reason_and_files_reconcile(hostile_run):
    data_dir, plan, _ = hostile_run
    reasons = dict(
        query(
            data_dir,
            "select source_file || ':' || line_number, reason from raw.events_rejected where source_file like ?",
            [f"{HOSTILE_FOLDER}/%"],
        )
    )
    huge = f"{HOSTILE_FOLDER}/b_huge_line.jsonl.gz"
    assert reasons[f"{huge}:1"] == "line of more than 4194304 bytes is over max_line_bytes (4194304)"
    for line in (1, 2, 3):
        assert reasons[f"{HOSTILE_FOLDER}/e_ancient.jsonl:{line}"].startswith("timestamp before min_event_time")
    assert any(key.startswith(f"{HOSTILE_FOLDER}/f_trailing_garbage.jsonl.gz:") for key in reasons)
    [(longest,)] = query(data_dir, "select max(strlen(raw_line)) from raw.events_rejected")
    assert longest <= 64 * 1024
    manifest = {
        name: (status, rows_in, rows_loaded + rows_duplicate + rows_rejected)
        for name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected in query(
            data_dir,
            "select file_name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected from raw.load_manifest",
        )
    }
    assert set(plan.files) <= set(manifest)
    assert all(rows_in == accounted for _, rows_in, accounted in manifest.values())
    assert manifest[f"{HOSTILE_FOLDER}/f_trailing_garbage.jsonl.gz"][0] == "damaged"
    assert manifest[huge][:2] == ("loaded", 2)
    assert not set(plan.not_landing_files) & set(manifest)


def test_unplanned_variants_are_flagged_and_the_planned_analysis_stands(hostile_run):
    data_dir = hostile_run[0]
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select experiment_id, variant, is_planned_variant, is_planned_experiment, srm_p_value "
            "from marts.experiment_results order by 1, 2"
        ).fetchall()
        flags = dict(con.execute("select flag, flagged from marts.data_health_flags").fetchall())
    planned = {(experiment, variant): (is_planned, known) for experiment, variant, is_planned, known, _ in rows}
    assert planned[("checkout_redesign", "evil")] == (False, True)
    assert planned[("checkout_redesign", "control")] == (True, True)
    assert planned[("checkout_redesign", "treatment")] == (True, True)
    assert planned[("made_up_experiment", "x")][1] is False
    srm = {srm for experiment, _, _, _, srm in rows if experiment == "checkout_redesign"}
    assert len(srm) == 1 and None not in srm
    # evil, the markup name and (invalid) in checkout_redesign, no-plus-sign in onboarding_2x2; made_up_experiment
    assert (flags["unplanned_variant"], flags["unplanned_experiment"], flags["invalid_experiment_name"]) == (4, 1, 1)
    assert planned[("checkout_redesign", "**x**|<img src=x onerror=alert(1)>")] == (False, True)
    assert planned[("checkout_redesign", "(invalid)")] == (False, True)
    assert planned[("onboarding_2x2", "no-plus-sign")] == (False, True)


def test_no_process_followed_the_symlink(hostile_run):
    data_dir = hostile_run[0]
    for table in ("events", "events_rejected"):
        text = query(data_dir, f"select string_agg(to_json(t)::varchar, '') from raw.{table} as t")[0][0] or ""
        assert SECRET not in text
    assert os.path.islink(data_dir / "landing" / HOSTILE_FOLDER / "h_link.jsonl")
