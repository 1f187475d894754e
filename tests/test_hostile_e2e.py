"""The whole graph on generated events plus every poisoned file a client or a dropped file can bring.

The run must succeed, the poison must end up rejected or flagged, and a clean file that lands after the poisoned
ones must reach the serving copy.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import pytest

from demo_events import GeneratorConfig, generate
from tests.conftest import event, query, settle, write_lines

pytestmark = pytest.mark.slow

HUGE_LINE_BYTES = 64 << 20  # far over the default max_line_bytes, and it must never be held whole


def _huge_line_gzip(path: Path) -> Path:
    """A gzip file that inflates to one line of HUGE_LINE_BYTES and then one good event."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b'{"message_id": "huge-1", "user_id": "huge", "padding": "')]
    block = b"x" * (1 << 20)
    parts += [compressor.compress(block) for _ in range(HUGE_LINE_BYTES >> 20)]
    good = orjson.dumps(
        event(
            "after-huge",
            user_id="after_huge_user",
            timestamp="2026-10-01T10:00:00Z",
            received_at="2026-10-01T10:00:01Z",
        )
    )
    parts += [compressor.compress(b'"}\n' + good + b"\n"), compressor.flush()]
    path.write_bytes(b"".join(parts))
    return settle(path)


def _plant_poison(landing: Path, outside: Path) -> None:
    viewed = {"type": "track", "event": "Experiment Viewed", "timestamp": "2026-10-01T09:00:00Z"}
    write_lines(
        landing / "poison" / "a_unplanned_variants.jsonl",
        [
            # a variant the seed does not plan, an experiment it does not know, a factorial variant that is no design
            {**viewed, "message_id": "evil-1", "user_id": "evil_user",
             "properties": {"experiment_id": "checkout_redesign", "variant": "evil"}},
            {**viewed, "message_id": "evil-2", "user_id": "evil_user",
             "properties": {"experiment_id": "made_up_experiment", "variant": "x"}},
            {**viewed, "message_id": "evil-3", "user_id": "evil_user",
             "properties": {"experiment_id": "onboarding_2x2", "variant": "no-plus-sign"}},
        ],
    )  # fmt: skip
    _huge_line_gzip(landing / "poison" / "b_huge_line.jsonl.gz")
    bom_event = orjson.dumps(
        event("bom-1", user_id="bom_user", timestamp="2026-10-01T10:00:00Z", received_at="2026-10-01T10:00:01Z")
    )
    settle_write(landing / "poison" / "c_bom.jsonl", b"\xef\xbb\xbf" + bom_event + b"\n")
    settle_write(
        landing / "poison" / "d_bom.csv",
        b"\xef\xbb\xbfmessage_id,user_id,type,event,timestamp\nbom-csv-1,bom_csv_user,track,Product Viewed,"
        b"2026-10-01T10:00:00Z\n",
    )
    write_lines(
        landing / "poison" / "e_ancient.jsonl",
        [
            event("ancient-1", user_id="ancient_user", timestamp="0001-01-01T00:00:00+05:00"),
            event("ancient-2", user_id="ancient_user", timestamp="1999-12-31T23:59:59Z"),
            event("ancient-3", user_id="ancient_user", timestamp="-0044-03-15T12:00:00Z"),
        ],
    )
    good = gzip.compress(orjson.dumps(event("garbage-tail-1", user_id="tail_user")) + b"\n", mtime=0)
    settle_write(landing / "poison" / "f_trailing_garbage.jsonl.gz", good + b"this is not gzip")
    secret = outside / "secret.jsonl"
    secret.write_text('{"message_id": "leak", "user_id": "root:x:0:0", "timestamp": "2026-10-01T10:00:00Z"}\n')
    (landing / "poison" / "g_link.jsonl").symlink_to(secret)
    (landing / "poison" / "h_folder.jsonl").mkdir()
    write_lines(
        landing / "zz_clean.jsonl",
        [event("clean-1", user_id="clean_user", timestamp="2026-10-01T11:00:00Z", received_at="2026-10-01T11:00:01Z")],
    )


def settle_write(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return settle(path)


@pytest.fixture(scope="module")
def poisoned_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "data"
    generate(GeneratorConfig(users=200, seed=11, months=3, file_rows=5000), data_dir)
    outside = root / "outside"
    outside.mkdir()
    _plant_poison(data_dir / "landing", outside)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(data_dir))
        env.setenv("SETTLE_SECONDS", "0")
        from orchestration.definitions import defs

        job = defs().resolve_job_def("materialize_everything")
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
    return data_dir, result


def test_the_run_succeeds_and_the_clean_file_reaches_the_serving_copy(poisoned_run):
    data_dir, result = poisoned_run
    failed = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert result.success, failed
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        users = {row[0] for row in con.execute("select user_id from marts.user_segments").fetchall()}
    assert {"clean_user", "bom_user", "bom_csv_user", "after_huge_user", "tail_user"} <= users
    assert "ancient_user" not in users and "root:x:0:0" not in users


def test_every_poisoned_row_is_rejected_with_its_reason_and_files_reconcile(poisoned_run):
    data_dir = poisoned_run[0]
    reasons = dict(
        query(
            data_dir,
            "select source_file || ':' || line_number, reason from raw.events_rejected "
            "where source_file like 'poison/%'",
        )
    )
    assert reasons["poison/b_huge_line.jsonl.gz:1"].startswith("line of more than")
    assert all(reasons[f"poison/e_ancient.jsonl:{n}"].startswith("timestamp before min_event_time") for n in (1, 2))
    assert any(key.startswith("poison/f_trailing_garbage.jsonl.gz:") for key in reasons)
    [(longest,)] = query(data_dir, "select max(strlen(raw_line)) from raw.events_rejected")
    assert longest <= 64 * 1024
    manifest = {
        name: (status, rows_in, rows_loaded + rows_duplicate + rows_rejected)
        for name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected in query(
            data_dir,
            "select file_name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected from raw.load_manifest",
        )
    }
    assert all(rows_in == accounted for _, rows_in, accounted in manifest.values())
    assert manifest["poison/f_trailing_garbage.jsonl.gz"][0] == "damaged"
    assert not any("g_link" in name or "h_folder" in name for name in manifest)
    assert not query(data_dir, "select 1 from raw.events where message_id = 'leak'")


def test_unplanned_variants_are_flagged_and_the_planned_analysis_stands(poisoned_run):
    data_dir = poisoned_run[0]
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select experiment_id, variant, is_planned_variant, is_planned_experiment, srm_p_value "
            "from marts.experiment_results order by 1, 2"
        ).fetchall()
    flags = {(experiment, variant): (planned, known) for experiment, variant, planned, known, _ in rows}
    assert flags[("checkout_redesign", "evil")] == (False, True)
    assert flags[("checkout_redesign", "control")] == (True, True)
    assert flags[("checkout_redesign", "treatment")] == (True, True)
    assert flags[("made_up_experiment", "x")][1] is False
    srm = {srm for experiment, _, _, _, srm in rows if experiment == "checkout_redesign"}
    assert len(srm) == 1 and None not in srm


def test_no_process_followed_the_symlink(poisoned_run):
    data_dir = poisoned_run[0]
    for table in ("events", "events_rejected"):
        text = query(data_dir, f"select string_agg(to_json(t)::varchar, '') from raw.{table} as t")[0][0] or ""
        assert "root:x:0:0" not in text
    assert os.path.islink(data_dir / "landing" / "poison" / "g_link.jsonl")
