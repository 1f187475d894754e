"""The store registry: the committed doc, and the files of parts the end-to-end run does not exercise (the
collector's spool, KPI alert exports, a publish's litter) written by the real code into a real DATA_DIR."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from activation.delivery import ALERTS, export_entries
from collector.spool import Spool
from serving.publish import OPS_TABLES
from settings import CollectorSettings
from stores import HAND_TABLES, PATH_STORES, store_for_path, table_stores, unregistered_paths, unregistered_tables
from stores.docs import DOC, render
from stores.registry import ROOT


def test_the_committed_doc_is_up_to_date():
    assert DOC.read_text() == render(), "docs/stores.md is out of date: run `python -m stores.docs`"


def test_the_package_imports_neither_dagster_nor_streamlit():
    code = (
        "import sys, stores, stores.docs; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'streamlit'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_store_says_who_owns_it_and_how_erasure_reaches_it():
    for store in [*PATH_STORES, *table_stores()]:
        assert store.owner and store.what and store.erasure, store
        assert isinstance(store.holds_personal_data, bool), store
        if not store.holds_personal_data:
            assert not getattr(store, "user_columns", ()), store
    patterns = [p.pattern for p in PATH_STORES]
    assert len(patterns) == len(set(patterns))
    names = [(t.database, t.table) for t in table_stores()]
    assert len(names) == len(set(names))


def test_the_serving_copys_ops_tables_are_the_ones_publish_writes():
    registered = {t.table for t in HAND_TABLES if t.database == "serving" and t.table.startswith("ops.")}
    assert registered == {f"ops.{name}" for name, _, _ in OPS_TABLES}


def test_the_collectors_spool_and_its_landed_files_are_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    settings = CollectorSettings.from_env()
    spool = Spool(settings.spool_root, settings.landing_dir, rotate_events=100)
    spool.open()
    try:
        spool.write(b'{"messageId": "m1", "userId": "u1", "type": "track", "event": "Clicked"}\n', 1)
        spooled = [p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()]
        assert any(name.endswith(".jsonl") for name in spooled) and any(name.endswith(".lock") for name in spooled)
        assert unregistered_paths(data_dir) == []
        open_file = next(name for name in spooled if name.endswith(".jsonl"))
        assert store_for_path(open_file).pattern == "spool/collector/*/*.jsonl"
        assert store_for_path(open_file).holds_personal_data
        landed = spool.rotate()
    finally:
        spool.close()
    assert landed is not None and landed.parent == data_dir / "landing" / "collector"
    assert unregistered_paths(data_dir) == []
    assert store_for_path(landed.relative_to(data_dir).as_posix()).owner == "collector"


def test_kpi_alert_and_audience_exports_are_registered_apart(tmp_path: Path):
    data_dir = tmp_path / "data"
    export_dir = data_dir / "activation"
    alert = export_entries([{"kpi": "dau", "activity_date": "2026-11-01"}], export_dir, ALERTS, "20261101T000000")
    entry = export_entries([{"user_id": "u1", "audience": "lapsed"}], export_dir, "segment_lapsed", "20261101T000000")
    (entry.parent / f".{entry.name}.tmp").write_bytes(b"")  # what a crash mid-write leaves
    assert unregistered_paths(data_dir) == []
    assert not store_for_path(alert.relative_to(data_dir).as_posix()).holds_personal_data
    assert store_for_path(entry.relative_to(data_dir).as_posix()).holds_personal_data


def test_a_killed_publishs_litter_is_registered(tmp_path: Path):
    """The temporary names serving.publish uses (published/.<version>.tmp, .serving.duckdb.<hex>.tmp, ...)."""
    data_dir = tmp_path / "data"
    (data_dir / "published" / ".20261101T000000000000Z-abcd1234.tmp" / "exports" / "marts").mkdir(parents=True)
    (data_dir / "published" / ".20261101T000000000000Z-abcd1234.tmp" / "serving.duckdb").write_bytes(b"")
    (data_dir / "published" / ".current.0123456789ab.tmp").symlink_to("20261101T000000000000Z-abcd1234")
    (data_dir / ".serving.duckdb.0123456789ab.tmp").symlink_to("published/current/serving.duckdb")
    (data_dir / ".exports.0123456789ab.retired.tmp" / "marts").mkdir(parents=True)
    (data_dir / "warehouse.duckdb.tmp").mkdir()
    assert unregistered_paths(data_dir) == []
    (data_dir / "published" / "stray.txt").write_text("?")
    (data_dir / "notes").mkdir()
    assert unregistered_paths(data_dir) == ["notes/", "published/stray.txt"]


def test_unregistered_tables_names_what_nobody_registered(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema raw")
        con.execute("create table raw.events (user_id varchar)")
        con.execute("create table main.scratch (x int)")
        con.execute("create view main.scratch_view as select 1")
        assert unregistered_tables(con, "warehouse") == ["main.scratch", "main.scratch_view"]
        assert unregistered_tables(con, "serving") == ["main.scratch", "main.scratch_view", "raw.events"]


# -- the DDL of the tables dbt does not build (stores.schema) ------------------------------------------------------


def test_every_hand_written_warehouse_table_is_declared_once_and_registered():
    from stores.schema import TABLES

    registered = {store.table for store in HAND_TABLES if store.database == "warehouse"}
    assert registered == set(TABLES)


def test_ensure_creates_each_declared_table_with_its_columns_and_upgrades_an_older_one(tmp_path):
    from stores.schema import TABLES, connect, ensure

    with connect(str(tmp_path / "w.duckdb")) as con:
        # a load manifest from before the batch gate: no batch_id, gate_status or attempts
        con.execute("create schema raw")
        con.execute(
            "create table raw.load_manifest (file_name varchar not null, checksum varchar not null, "
            "file_size bigint not null, file_mtime double not null, rows_in bigint not null, "
            "rows_loaded bigint not null, rows_duplicate bigint not null, rows_rejected bigint not null, "
            "status varchar not null, detail varchar, loaded_at timestamp not null, load_seconds double not null)"
        )
        ensure(con, "raw", "ml", "activation", "meta")
        for name, spec in TABLES.items():
            described = con.execute(f"describe {name}").fetchall()
            assert {row[0]: row[1] for row in described} == {c: t.upper() for c, t in spec.column_types.items()}, name
        with pytest.raises(ValueError, match="no table or schema"):
            ensure(con, "raw.nothing")


def _macro_columns() -> dict[str, list[str]]:
    import re

    macro = (ROOT / "dbt_project" / "macros" / "ml_contract_tables.sql").read_text()
    declared = macro.split("{% set tables = {", 1)[1].split("} %}", 1)[0]
    tables = {}
    for name, body in re.findall(r"'(\w+)': '(.*?)'", declared, flags=re.DOTALL):
        # the macro writes `string` (Spark has no unbounded varchar); DuckDB reads it as varchar
        tables[f"ml.{name}"] = [" ".join(column.split()).replace(" string", " varchar") for column in body.split(",")]
    return tables


def test_dbts_ml_contract_macro_creates_the_declared_columns():
    from stores.schema import ML_CONTRACT_TABLES, TABLES

    expected = {name: [f"{c} {t}" for c, t in TABLES[name].column_types.items()] for name in ML_CONTRACT_TABLES}
    assert _macro_columns() == expected


def test_dbt_sources_name_only_declared_tables_and_columns():
    import yaml

    from stores.schema import ML_CONTRACT_TABLES, TABLES

    sources = yaml.safe_load((ROOT / "dbt_project" / "models" / "staging" / "__sources.yml").read_text())["sources"]
    for source in sources:
        for table in source["tables"]:
            name = f"{source['schema']}.{table['name']}"
            documented = [column["name"] for column in table.get("columns", [])]
            assert name in TABLES, name
            assert set(documented) <= set(TABLES[name].column_types), name
            if name in ML_CONTRACT_TABLES:
                assert documented == list(TABLES[name].column_types), name
