"""The settings catalogue: the only reader of the environment, complete, documented, and what resources pass on."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import typing
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.dbt.assets import dbt_vars_args
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import WarehouseResource, warehouse_resource
from orchestration.settings_resources import env_fields
from settings import SECTIONS, SettingError, Settings, load
from settings.docs import DOC, render
from settings.fields import plain_type, setting_fields

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("activation", "collector", "dashboard", "demo_events", "event_contract", "expectations", "ingestion", "live",
           "ml", "orchestration", "serving", "stores")  # fmt: skip
ENV_ACCESS = re.compile(r"os\.environ|os\.getenv|getenv\(|environ\.get\(")
# the one place outside settings/ that touches os.environ: it puts back what mlflow.set_tracking_uri writes there
RESTORES_MLFLOW_WRITES = ROOT / "ml" / "tracking.py"


def every_env_name() -> set[str]:
    names = {spec.env for section in SECTIONS.values() for _, spec in setting_fields(section)}
    return names | {"DATA_DIR"}


def test_nothing_outside_settings_reads_the_environment():
    offenders = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            code = [line.split("#")[0] for line in path.read_text().splitlines()]
            hits = [line.strip() for line in code if ENV_ACCESS.search(line) and '"""' not in line]
            if hits and path != RESTORES_MLFLOW_WRITES:
                offenders.append(f"{path.relative_to(ROOT)}: {hits}")
    assert offenders == []
    restore = RESTORES_MLFLOW_WRITES.read_text()
    assert restore.count("os.environ[") == 1 and "MLFLOW_TRACKING_URI" in restore


def test_the_settings_doc_is_current_and_names_every_setting():
    assert DOC.read_text() == render(), "run python -m settings.docs"
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", DOC.read_text(), flags=re.MULTILINE))
    assert documented == every_env_name()


def test_every_variable_the_makefile_and_the_dbt_profile_read_is_a_setting():
    makefile = (ROOT / "Makefile").read_text()
    made = set(re.findall(r"^([A-Z][A-Z0-9_]+) \?=", makefile, flags=re.MULTILINE))
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    read_by_dbt = set(re.findall(r"env_var\('([A-Z_]+)'", profile))
    assert made and read_by_dbt and (made | read_by_dbt) <= every_env_name()


def test_every_setting_has_a_unit_and_a_meaning_and_its_default_reads_back():
    for section in SECTIONS.values():
        hints = typing.get_type_hints(section)
        for field, spec in setting_fields(section):
            assert spec.unit and spec.meaning, spec.env
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            kind, optional = plain_type(hints[field.name])
            assert (default is None and optional) or isinstance(default, typing.get_origin(kind) or kind), spec.env


def test_defaults_without_any_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "data"
    assert (settings.ingest.settle_seconds, settings.ingest.max_line_bytes, settings.ingest.memory_limit) == (
        5.0, 4 << 20, "50%",
    )  # fmt: skip
    assert settings.collector.write_keys == {"dev": "dev"} and settings.collector.dev_key_warning
    assert settings.ml.tracking_store == f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}"
    assert settings.activation.export_dir == tmp_path / "data" / "activation"
    assert (settings.serving.freshness_bound_minutes, settings.refresh.follow_up_every_minutes) == (1560.0, 10.0)
    assert settings.contract.min_event_time == datetime(2000, 1, 1, tzinfo=UTC)


def test_shared_contract_values_reach_both_sections_and_blank_means_default(tmp_path):
    settings = Settings.from_env(
        {
            "DATA_DIR": str(tmp_path),
            "FUTURE_TOLERANCE_HOURS": "2",
            "MIN_EVENT_TIME": "2020-01-01",
            "SETTLE_SECONDS": " ",
        }
    )
    assert settings.ingest.future_tolerance_hours == settings.collector.future_tolerance_hours == 2.0
    assert settings.ingest.min_event_time == settings.collector.min_event_time == datetime(2020, 1, 1, tzinfo=UTC)
    assert settings.ingest.settle_seconds == 5.0 and settings.ingest.landing_dir == tmp_path / "landing"


def numeric_settings() -> list[tuple[str, type]]:
    found = []
    for section in SECTIONS.values():
        hints = typing.get_type_hints(section)
        for field, spec in setting_fields(section):
            kind, _ = plain_type(hints[field.name])
            if kind in (int, float) and spec.parse is None:
                found.append((spec.env, kind))
    return found


@pytest.mark.parametrize(("env", "kind"), numeric_settings())
def test_a_value_that_cannot_be_used_names_its_variable(env, kind):
    with pytest.raises(SettingError, match=f"^{env}='twelve' is not a {'whole number' if kind is int else 'number'}"):
        Settings.from_env({env: "twelve"})


def test_bounds_and_cross_checks_are_errors_naming_the_variables():
    with pytest.raises(SettingError, match="MAX_RAW_LINE_BYTES=8 is below its minimum of 16"):
        Settings.from_env({"MAX_RAW_LINE_BYTES": "8"})
    with pytest.raises(SettingError, match="MAX_LINE_BYTES=1000 must stay above the properties limit"):
        Settings.from_env({"MAX_LINE_BYTES": "1000"})
    with pytest.raises(SettingError, match="ACTIVATION_WEBHOOK_SECRET"):
        Settings.from_env({"ACTIVATION_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    with pytest.raises(SettingError, match="COLLECTOR_WRITE_KEYS"):
        Settings.from_env({"COLLECTOR_WRITE_KEYS": "no-colon"})


def test_the_resources_fields_are_the_catalogues_and_environment_values_arrive_through_env_vars(data_dir, monkeypatch):
    fields = set(WarehouseResource.model_fields) | set(MLflowResource.model_fields)
    pipeline_sections = (
        "contract", "ingest", "gate", "activation", "quality", "serving", "refresh", "engine", "privacy", "ml"
    )  # fmt: skip
    expected = {"data_dir"} | {
        spec.env.lower() for name in pipeline_sections for _, spec in setting_fields(SECTIONS[name])
    }
    assert fields == expected
    monkeypatch.setenv("SETTLE_SECONDS", "7")
    monkeypatch.setenv("ML_CLUSTER_LOW_DATA_EVENTS", "3")
    resource = warehouse_resource()
    assert isinstance(resource.settle_seconds, dg.EnvVar) and resource.gate_volume_min_rows == "1000"
    # every field's default reads back to the catalogue's default
    assert WarehouseResource(data_dir=str(data_dir)).settings() == Settings.from_env({"DATA_DIR": str(data_dir)})
    before = dict(os.environ)

    @dg.asset
    def seen(warehouse: WarehouseResource, mlflow: MLflowResource) -> tuple:
        ml = mlflow.section(warehouse.data_path)
        return warehouse.ingest_settings().settle_seconds, warehouse.data_path, ml.cluster_low_data_events, ml.data_dir

    result = dg.materialize(
        [seen], resources={"warehouse": resource, "mlflow": MLflowResource(**env_fields(MLflowResource))}
    )
    assert result.output_for_node("seen") == (7.0, data_dir, 3, data_dir)
    assert dict(os.environ) == before


def test_dbt_gets_the_warehouse_folder_threads_and_memory_as_vars_not_through_the_environment(tmp_path):
    resource = WarehouseResource(data_dir=str(tmp_path / "elsewhere"), dbt_threads="3", dbt_memory_limit="1GB")
    args = dbt_vars_args(resource)
    assert args[0] == "--vars" and json.loads(args[1]) == {
        "data_dir": str(tmp_path / "elsewhere"), "threads": "3", "memory_limit": "1GB"
    }  # fmt: skip
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    assert "var('data_dir'" in profile and "var('threads'" in profile and "var('memory_limit'" in profile


def test_on_spark_dbt_also_gets_how_to_reach_spark_and_the_python_for_its_transform(tmp_path):
    resource = WarehouseResource(
        data_dir=str(tmp_path), dbt_target="spark", spark_master="local[1]", spark_shuffle_partitions="2"
    )
    values = json.loads(dbt_vars_args(resource)[1])
    assert values["spark_master"] == "local[1]" and values["spark_shuffle_partitions"] == "2"
    assert values["spark_method"] == "session" and values["pyspark_python"] == sys.executable
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    for name in ("spark_method", "spark_host", "spark_port", "spark_master", "spark_driver_memory"):
        assert f"var('{name}'" in profile, name
    with pytest.raises(SettingError, match="SPARK_METHOD=thrift needs SPARK_HOST"):
        WarehouseResource(data_dir=str(tmp_path), dbt_target="spark", spark_method="thrift").settings()


def test_dbt_runs_duckdb_with_the_threads_and_memory_limit_it_is_given(tmp_path):
    """A real dbt invocation: DuckDB inside dbt reports the values the vars carried."""
    resource = WarehouseResource(data_dir=str(tmp_path), dbt_threads="1", dbt_memory_limit="700MB")
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "show", "--profiles-dir", ".", "--output", "json", "--inline",
         "select current_setting('threads') as threads, current_setting('memory_limit') as memory_limit",
         *dbt_vars_args(resource)],
        cwd=ROOT / "dbt_project", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert '"threads": 1' in shown.stdout and '"memory_limit": "667.5 MiB"' in shown.stdout, shown.stdout


def test_load_reads_this_processs_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("GX_KEEP_RESULTS", "4")
    settings = load()
    assert settings.data_dir == tmp_path / "x" and settings.quality.gx_keep_results == 4
