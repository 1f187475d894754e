"""privacy.erase on a warehouse built by the real Dagster job from generated events: every store under DATA_DIR
loses the most active user (and the anonymous id stitched to them), the manifest stays true, the marts equal a
fresh build from the rewritten landing files, later events of the user are dropped, and a second erasure is a
no-op. One Dagster run for the whole module (about a minute), one erasure (about 25 s)."""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

import settings as catalogue
from demo_events import GeneratorConfig, generate
from ingestion.loader import ingest_landing
from orchestration.run_history import scrub_runs
from privacy import ledger
from privacy.erase import ErasureReport, erase
from privacy.identities import resolve
from privacy.keys import SUBJECT, keyed_hash, privacy_key
from privacy.scan import scan
from privacy.suppression import read_hashes
from settings import Settings
from tests.collector_server import ThreadServer, landed_lines
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow

# marts with one row per user (or per user and audience entry): they must lose exactly the erased user
PER_USER_MARTS = (
    "user_segments",
    "ml_user_features",
    "audience_segments",
    "audience_cart_abandonment",
    "audience_reengagement",
    "audience_churn_risk",
)
# what the ML assets write (Dagster, not dbt): copied from the erased warehouse into the fresh build
ML_TABLES = ("user_clusters", "churn_scores", "model_metrics", "experiment_factorial_effects")
# columns stamped with the time of a build rather than computed from the events: left out of the comparison (only
# intermediate models carry them today, via macros/incremental_users.sql; no mart has one)
BUILD_TIME_COLUMNS = frozenset({"staged_at", "staged_through", "published_at", "built_at"})
WEB = ("web-key", "")


@dataclass
class Erased:
    data_dir: Path  # erased in place
    original: Path  # a copy taken just before the erasure
    settings: Settings
    user: str
    anonymous_ids: frozenset[str]  # stitched to the user, resolved in the original warehouse
    other_user: str  # the next most active user, untouched
    report: ErasureReport


@dg.op
def look_up_ticket() -> None:
    """Nothing: the run exists for its tag, which names a user as a support tool's run would."""


@dg.job
def support_ticket() -> None:
    look_up_ticket()


def environment(data_dir: Path, **extra: str) -> Settings:
    # no PRIVACY_KEY: the erasure makes the key file under DATA_DIR/privacy, which every later step must share
    return catalogue.load({"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", **extra})


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Erased:
    root = tmp_path_factory.mktemp("erase")
    data_dir = root / "data"
    generate(GeneratorConfig(users=300, seed=7, months=3, file_rows=4000), data_dir)
    home = data_dir / "dagster_home"  # the instance lives under DATA_DIR, where the erasure scrubs runs
    home.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(data_dir))
        env.setenv("SETTLE_SECONDS", "0")
        from orchestration.definitions import defs

        job = defs().resolve_job_def("materialize_everything")
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            assert job.execute_in_process(instance=instance).success
            [(user,), (other_user,)] = query(
                data_dir,
                "select user_id from raw.events where user_id is not null group by 1 "
                "order by count(*) desc, user_id limit 2",
            )
            assert support_ticket.execute_in_process(instance=instance, tags={"ticket_user": user}).success
    # seed 7 gives the most active user rows in every landing format and rejected rows naming them (9), so no
    # landing file has to be added for the rejected path
    files = {name for (name,) in query(data_dir, "select source_file from raw.events where user_id = ?", [user])}
    assert {".parquet", ".csv", ".jsonl", ".jsonl.gz", ".csv.gz"} <= {"." + name.split(".", 1)[1] for name in files}
    rejected = "select count(*) from raw.events_rejected where contains(raw_line, ?)"
    assert query(data_dir, rejected, [user])[0][0] > 0

    original = root / "original"
    shutil.copytree(data_dir, original, symlinks=True)
    with duckdb.connect(str(original / "warehouse.duckdb"), read_only=True) as con:
        subject = resolve(con, [user])
    settings = environment(data_dir)
    report = erase(settings, [user], scrub_run_history=lambda ids: scrub_runs(home, ids))
    print(f"\nerasure: {sum(report.seconds.values()):.1f} s, by step {json.dumps(report.seconds)}")
    return Erased(data_dir, original, settings, user, subject.anonymous_ids, other_user, report)


# -- landing files read independently of ingestion (standard library and pyarrow) -------------------------------------


def landing_rows(path: Path) -> list[tuple[int, dict]]:
    """(number, row) of every row of a landing file, numbered as ingestion numbers them: the physical line of a JSON
    lines file, the last physical line of a CSV record, the 1-based row of a Parquet file."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        if ".csv" in name:
            reader = csv.DictReader(handle)
            return [(reader.line_num, row) for row in reader]
        return [(number, json.loads(line)) for number, line in enumerate(handle, start=1) if line.strip()]


def field(row: dict, snake: str, camel: str) -> str | None:
    value = row.get(snake, row.get(camel))
    value = value.strip() if isinstance(value, str) else value
    return value or None  # an empty CSV cell is no id


def subject_lines(landing: Path, user: str, anonymous_ids: frozenset[str]) -> dict[str, set[int]]:
    """Per landing file, the rows of the user: theirs by user_id, or with no user_id and a stitched anonymous id."""
    found = {}
    for path in sorted(p for p in landing.iterdir() if p.is_file()):
        found[path.name] = {
            number
            for number, row in landing_rows(path)
            if (owner := field(row, "user_id", "userId")) == user
            or (owner is None and field(row, "anonymous_id", "anonymousId") in anonymous_ids)
        }
    return found


def manifest(data_dir: Path) -> dict[str, tuple[int, int, int, int, int]]:
    rows = query(
        data_dir,
        "select file_name, rows_in, rows_loaded, rows_duplicate, rows_rejected, coalesce(rows_erased, 0) "
        "from raw.load_manifest",
    )
    return {row[0]: row[1:] for row in rows}


def per_file(data_dir: Path, sql: str, lines: dict[str, set[int]]) -> dict[str, int]:
    """Rows of `sql` (source_file, line) whose line is one of the subject's lines of that file."""
    counts = dict.fromkeys(lines, 0)
    for name, number in query(data_dir, sql):
        counts[name] = counts.get(name, 0) + (number in lines.get(name, ()))
    return counts


# -- 2. nothing left, the ledger, the manifest, the serving copy ------------------------------------------------------


def test_no_store_under_data_dir_names_the_user_or_their_anonymous_id_any_more(erased):
    ids = [erased.user, *erased.anonymous_ids]
    assert len(erased.anonymous_ids) == erased.report.anonymous_ids == 1
    # the scan sees them before, in every kind of store: landing files of each format, both DuckDB files, exports,
    # MLflow training data, activation files and the Dagster run that names the user
    before = {finding.path for finding in scan(erased.original, ids, skip=("demo_truth/",))}
    assert {f"landing/{path.name}" for path in (erased.original / "landing").iterdir()} <= before  # all 7 files
    for prefix in ("warehouse.duckdb", "published/", "activation/", "mlartifacts/", "dagster_home/"):
        assert any(path.startswith(prefix) for path in before), prefix

    assert scan(erased.data_dir, ids, skip=("demo_truth/",)) == []
    # the Dagster run naming the user went, the pipeline's run (which names nobody) stayed
    assert erased.report.removed["dagster runs"] == {"runs_deleted": 1}
    instance = dg.DagsterInstance.from_config(str(erased.data_dir / "dagster_home"))
    try:
        assert [run.job_name for run in instance.get_runs()] == ["materialize_everything"]
    finally:
        instance.dispose()


def test_the_ledger_and_the_suppression_list_hold_keyed_hashes_only(erased):
    key = privacy_key(erased.settings.privacy)
    user_hash = keyed_hash(key, SUBJECT, erased.user)
    path = erased.settings.privacy.ledger_path
    entries = [entry for entry in ledger.entries(path) if entry["request_id"] == erased.report.request_id]
    assert [entry["event"] for entry in entries] == ["requested", "finished"]
    assert [entry["users"] for entry in entries] == [[user_hash], [user_hash]]
    finished = entries[1]
    assert finished["anonymous_ids"] == 1 and finished["problems"] == []
    expected_rows = sum(
        map(len, subject_lines(erased.original / "landing", erased.user, erased.anonymous_ids).values())
    )
    assert finished["removed"]["landing files"] == {
        "files_scanned": 7,
        "files_rewritten": 7,
        "rows_removed": expected_rows,
    }
    # the user's row in the clustering features and its rows in the recommendation model's training interactions
    # (those before the holdout's 14 days)
    with duckdb.connect(str(erased.original / "warehouse.duckdb"), read_only=True) as con:
        [(interactions,)] = con.execute(
            "select count(*) from marts.ml_product_interactions where user_id = ? and activity_date < "
            "(select max(activity_date) - interval 14 day from marts.ml_product_interactions)",
            [erased.user],
        ).fetchall()
    assert interactions > 0
    assert finished["removed"]["mlflow training data"]["rows"] == 1 + interactions
    text = path.read_text()
    assert erased.user not in text and not any(value in text for value in erased.anonymous_ids)
    assert read_hashes(erased.settings.privacy.suppression_path) == {
        keyed_hash(key, SUBJECT, value) for value in (erased.user, *erased.anonymous_ids)
    }


def test_every_manifest_row_reconciles_and_counts_exactly_the_users_landing_rows(erased):
    # Independent count: the ORIGINAL landing files read with csv/json/pyarrow, a row being the user's by user_id
    # (snake or camel case) or, with no user_id, by the stitched anonymous id. Each counted line is then found in
    # the ORIGINAL warehouse: as a raw.events row (loaded), a raw.events_rejected row (rejected), or neither (a
    # duplicate of a loaded message_id); what leaves each column of the manifest must match.
    lines = subject_lines(erased.original / "landing", erased.user, erased.anonymous_ids)
    before, after = manifest(erased.original), manifest(erased.data_dir)
    loaded = per_file(erased.original, "select source_file, source_line from raw.events", lines)
    rejected = per_file(erased.original, "select source_file, line_number from raw.events_rejected", lines)
    assert set(after) == set(before) == set(lines)
    for name, (rows_in, rows_loaded, rows_duplicate, rows_rejected, rows_erased) in after.items():
        was_in, was_loaded, was_duplicate, was_rejected, was_erased = before[name]
        assert rows_in == was_in == rows_loaded + rows_duplicate + rows_rejected + rows_erased, name
        assert (was_erased, rows_erased) == (0, len(lines[name])), name
        assert (was_loaded - rows_loaded, was_rejected - rows_rejected) == (loaded[name], rejected[name]), name
        assert was_duplicate - rows_duplicate == len(lines[name]) - loaded[name] - rejected[name], name
    # the lines counted as loaded are the user's raw.events rows by id: the numbering and the ids agree
    by_id = query(
        erased.original,
        "select count(*) from raw.events where user_id = ? or (user_id is null and anonymous_id = ?)",
        [erased.user, *erased.anonymous_ids],
    )[0][0]
    assert sum(loaded.values()) == by_id
    total = sum(row[4] for row in after.values())
    duplicates = total - sum(loaded.values()) - sum(rejected.values())
    anonymous_only = sum(map(len, subject_lines(erased.original / "landing", "", erased.anonymous_ids).values()))
    # seed 7: 1,115 rows = 1,103 loaded (1 of them anonymous-only) + 9 rejected + 3 duplicates: every path is taken
    assert total == sum(map(len, lines.values()))
    assert min(by_id, sum(rejected.values()), duplicates, anonymous_only) > 0, (by_id, rejected, duplicates)


def test_the_rewritten_files_hold_what_raw_says_at_the_lines_it_says(erased):
    landing = erased.data_dir / "landing"
    message_at = {}
    for path in landing.iterdir():
        for number, row in landing_rows(path):
            message_at[(path.name, number)] = field(row, "message_id", "messageId")
    assert len(message_at) == sum(row[0] - row[4] for row in manifest(erased.data_dir).values())
    events = query(erased.data_dir, "select source_file, source_line, message_id from raw.events")
    assert [row for row in events if message_at.get(row[:2]) != row[2]] == []
    rejected = query(erased.data_dir, "select source_file, line_number, raw_line from raw.events_rejected")
    assert (
        rejected
        and [row for row in rejected if row[:2] not in message_at or (message_at[row[:2]] or "") not in row[2]] == []
    )
    # the files are known as they are now: nothing is loaded again
    assert ingest_landing(erased.settings.ingest).files == []


def user_ids(database: Path, table: str) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {value for (value,) in con.execute(f"select distinct user_id from marts.{table}").fetchall()}


def test_the_serving_copy_lost_exactly_the_user_and_keeps_one_version(erased):
    for table in PER_USER_MARTS:
        before = user_ids(erased.original / "serving.duckdb", table)
        after = user_ids(erased.data_dir / "serving.duckdb", table)
        assert after == before - {erased.user}, table
        if table in ("user_segments", "ml_user_features", "audience_segments", "audience_cart_abandonment"):
            assert erased.user in before, table
    assert len(user_ids(erased.original / "serving.duckdb", "user_segments")) == 300
    versions = [p.name for p in (erased.data_dir / "published").iterdir() if p.name != "current"]
    assert versions == [(erased.data_dir / "published" / "current").resolve().name]
    assert versions[0] == erased.report.removed["serving copy"]["version"]
    assert versions[0] not in {p.name for p in (erased.original / "published").iterdir()}


# -- 3. the erased warehouse equals a fresh build from the rewritten landing files ----------------------------------


def mart_tables(database: Path) -> dict[str, list[tuple]]:
    """Every marts.* table as its rows (build-time columns left out), sorted."""
    tables = {}
    with duckdb.connect(str(database), read_only=True) as con:
        names = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' and database_name = current_database()"
        ).fetchall()
        for (name,) in names:
            cursor = con.execute(f'select * from marts."{name}"')
            keep = [i for i, column in enumerate(cursor.description) if column[0] not in BUILD_TIME_COLUMNS]
            rows = [tuple(row[i] for i in keep) for row in cursor.fetchall()]
            tables[name] = sorted(
                rows, key=lambda row: [(v is None, repr(round(v, 6) if isinstance(v, float) else v)) for v in row]
            )
    return tables


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def differences(left: dict[str, list[tuple]], right: dict[str, list[tuple]]) -> dict[str, str]:
    found = {}
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name), right.get(name)
        if a is None or b is None:
            found[name] = "missing on one side"
        elif len(a) != len(b):
            found[name] = f"{len(a)} rows against {len(b)}"
        else:
            rows = [(x, y) for x, y in zip(a, b, strict=True) if not all(map(same, x, y))]
            if rows:
                found[name] = f"{len(rows)} rows differ, first {rows[0]}"
    return found


def test_the_marts_equal_a_fresh_build_from_the_rewritten_landing_files(erased, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copytree(erased.data_dir / "landing", fresh / "landing")
    summary = ingest_landing(environment(fresh).ingest)
    erased_manifest = manifest(erased.data_dir)
    assert {
        r.file_name: (r.rows_in, r.rows_loaded, r.rows_duplicate, r.rows_rejected, r.rows_erased) for r in summary.files
    } == {
        name: (rows_in - erased_rows, loaded, duplicate, rejected, 0)
        for name, (rows_in, loaded, duplicate, rejected, erased_rows) in erased_manifest.items()
    }
    with duckdb.connect(str(fresh / "warehouse.duckdb")) as con:
        con.execute(f"attach '{erased.data_dir / 'warehouse.duckdb'}' as erased (read_only)")
        con.execute("create schema if not exists ml")
        for table in ML_TABLES:
            con.execute(f"create table ml.{table} as select * from erased.ml.{table}")
    run_dbt(fresh, "build", "--resource-type", "seed", "--resource-type", "model")

    built = mart_tables(fresh / "warehouse.duckdb")
    assert len(built) == 41 and sum(map(len, built.values())) > 10_000
    assert differences(mart_tables(erased.data_dir / "warehouse.duckdb"), built) == {}
    assert differences(mart_tables(erased.data_dir / "serving.duckdb"), built) == {}


# -- 4. later events of the erased user -------------------------------------------------------------------------------


def test_later_events_of_the_erased_user_are_dropped_by_ingestion_and_cut_out_of_their_file(erased, tmp_path):
    clone = tmp_path / "data"  # a copy of the erased DATA_DIR: the other tests keep the erased one as it is
    shutil.copytree(erased.data_dir, clone, symlinks=True)
    [anonymous_id] = erased.anonymous_ids
    later = write_lines(
        clone / "landing" / "later.jsonl",
        [
            event("later-1", erased.user),
            event("later-2", None, anonymous_id=anonymous_id),
            event("later-3", erased.other_user),
        ],
    )

    [result] = ingest_landing(environment(clone).ingest).files

    assert (result.file_name, result.rows_in, result.rows_loaded, result.rows_duplicate) == ("later.jsonl", 3, 1, 0)
    assert (result.rows_rejected, result.rows_erased, result.reconciles) == (0, 2, True)
    text = later.read_text()
    assert erased.user not in text and anonymous_id not in text
    assert [json.loads(line)["message_id"] for line in text.splitlines()] == ["later-3"]
    assert query(clone, "select message_id, user_id from raw.events where source_file = 'later.jsonl'") == [
        ("later-3", erased.other_user)
    ]
    assert ingest_landing(environment(clone).ingest).files == []


def test_the_collector_answers_the_erased_users_events_but_lands_only_the_other_users(erased, tmp_path):
    clone = tmp_path / "data"
    shutil.copytree(erased.data_dir, clone, symlinks=True)
    [anonymous_id] = erased.anonymous_ids
    settings = environment(clone, COLLECTOR_WRITE_KEYS="web-key:web", COLLECTOR_ROTATE_SECONDS="60").collector
    batch = [
        {"type": "track", "messageId": "c1", "userId": erased.user, "event": "Product Viewed"},
        {"type": "track", "messageId": "c2", "anonymousId": anonymous_id, "event": "Product Viewed"},
        {"type": "track", "messageId": "c3", "userId": erased.other_user, "event": "Product Viewed"},
    ]
    with ThreadServer(settings) as server:
        answer = httpx.post(server.url + "/v1/batch", auth=WEB, json={"batch": batch})
        assert (answer.status_code, answer.json()) == (200, {"success": True})
        single = httpx.post(server.url + "/v1/track", auth=WEB, json={**batch[0], "messageId": "c4"})
        assert (single.status_code, single.json()) == (200, {"success": True})
    assert [(line["messageId"], line["userId"]) for line in landed_lines(clone)] == [("c3", erased.other_user)]


# -- 5. a second erasure of the same user -----------------------------------------------------------------------------


def test_erasing_the_user_again_removes_nothing_and_is_recorded(erased):
    manifest_before = query(erased.data_dir, "select * from raw.load_manifest order by file_name")
    home = erased.data_dir / "dagster_home"

    again = erase(erased.settings, [erased.user], scrub_run_history=lambda ids: scrub_runs(home, ids))
    print(f"\nsecond erasure: {sum(again.seconds.values()):.1f} s, by step {json.dumps(again.seconds)}")

    removed = again.removed
    assert (removed["landing files"]["files_rewritten"], removed["landing files"]["rows_removed"]) == (0, 0)
    assert removed["warehouse tables"] == {} and removed["activation exports"] == {} and removed["gx results"] == 0
    assert removed["mlflow training data"] == {"runs": 0, "rows": 0, "model_versions_tagged": 0}
    assert removed["dagster runs"] == {"runs_deleted": 0} and again.problems == []
    # nothing to rebuild: dbt, the file rewrite and the republication are skipped
    assert not {"dbt", "rewrite", "publish"} & set(again.seconds) and "serving copy" not in removed
    assert query(erased.data_dir, "select * from raw.load_manifest order by file_name") == manifest_before
    user_hash = keyed_hash(privacy_key(erased.settings.privacy), SUBJECT, erased.user)
    finished = [
        entry
        for entry in ledger.entries(erased.settings.privacy.ledger_path)
        if entry["event"] == "finished" and entry["request_id"] == again.request_id
    ]
    assert [entry["users"] for entry in finished] == [[user_hash]]
    assert ledger.unfinished(erased.settings.privacy.ledger_path) == []
