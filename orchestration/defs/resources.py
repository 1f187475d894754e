"""Resources shared by every asset: the pipeline's settings (through `dg.EnvVar`, see
orchestration/settings_resources.py) and the dbt CLI."""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.defs.dbt.project import dbt_project
from orchestration.defs.dbt.workarounds import WarehouseDbtResource, dbt_executable
from orchestration.settings_resources import SettingsFields, env_fields, settings_resource_base
from settings import (
    ActivationSettings,
    ContractSettings,
    EngineSettings,
    GateSettings,
    IngestSettings,
    PrivacySettings,
    QualitySettings,
    RefreshSettings,
    ServingSettings,
    Settings,
)

if TYPE_CHECKING:
    from expectations.runner import SuiteRunner

# Every process that writes the DuckDB file runs in this pool; dagster.yaml limits it to one at a time.
DUCKDB_WRITER_POOL = "duckdb_writer"

_WarehouseFields = settings_resource_base(
    "_WarehouseFields",
    ContractSettings,
    IngestSettings,
    GateSettings,
    ActivationSettings,
    QualitySettings,
    ServingSettings,
    RefreshSettings,
    EngineSettings,
    PrivacySettings,
    extra=tuple(field for field in dataclasses.fields(Settings) if field.name == "data_dir"),
)


class WarehouseResource(SettingsFields, _WarehouseFields):
    """Where runtime state lives (`DATA_DIR`) and the settings of ingestion, the gate, activation, the suites,
    freshness, the follow-up runs and privacy; one field per setting (see docs/settings.md)."""

    @property
    def data_path(self) -> Path:
        return self.settings().data_dir

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse.duckdb"

    def ingest_settings(self) -> IngestSettings:
        return self.settings().ingest

    def suite_runner(self) -> "SuiteRunner":
        """A Great Expectations runner on this DATA_DIR's GX project, keeping GX_KEEP_RESULTS results a suite."""
        from expectations.runner import SuiteRunner  # GX takes seconds to import: only steps that validate pay

        return SuiteRunner(self.data_path, keep_results=self.settings().quality.gx_keep_results)

    def dbt_vars(self) -> dict[str, str]:
        """The vars every dbt invocation gets (Settings.dbt_vars: data_dir, threads, memory_limit, and Spark's)."""
        return self.settings().dbt_vars()


def warehouse_resource(**values: str) -> WarehouseResource:
    """The resource, with an EnvVar for every one of its settings the environment sets (`values` override them:
    field name to text, as the launchpad would)."""
    return WarehouseResource(**{**env_fields(WarehouseResource), **values})


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        # Steps that write DuckDB run one at a time anyway (one writer), so a process per step only adds
        # start-up time (about 9 s each here) to every run, which matters for event-driven freshness.
        executor=dg.in_process_executor,
        resources={
            "warehouse": warehouse_resource(),
            "dbt": WarehouseDbtResource(
                project_dir=dbt_project,
                profiles_dir=str(dbt_project.project_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )
