"""Resources shared by every asset, configured from environment variables with working defaults."""

import os
from dataclasses import replace
from pathlib import Path

import dagster as dg

from ingestion.settings import IngestSettings
from orchestration.defs.dbt.project import dbt_project
from orchestration.defs.dbt.workarounds import WarehouseDbtResource, dbt_executable

# Every process that writes the DuckDB file runs in this pool; dagster.yaml limits it to one at a time.
DUCKDB_WRITER_POOL = "duckdb_writer"


class WarehouseResource(dg.ConfigurableResource):
    """Where runtime state lives (`DATA_DIR`) and the ingestion thresholds of the input contract."""

    data_dir: str = "data"
    settle_seconds: float = 5.0
    future_tolerance_hours: float = 24.0

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse.duckdb"

    def ingest_settings(self) -> IngestSettings:
        base = IngestSettings(data_dir=self.data_path)
        return replace(base, settle_seconds=self.settle_seconds, future_tolerance_hours=self.future_tolerance_hours)

    def export_for_dbt(self) -> None:
        """dbt's profiles.yml reads DATA_DIR; give it the same absolute path this resource uses.

        dbt runs in a subprocess with the project folder as working directory, so a relative DATA_DIR
        would point somewhere else there.
        """
        os.environ["DATA_DIR"] = str(self.data_path)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        # Steps that write DuckDB run one at a time anyway (one writer), so a process per step only adds
        # start-up time (about 9 s each here) to every run, which matters for event-driven freshness.
        executor=dg.in_process_executor,
        resources={
            "warehouse": WarehouseResource(
                data_dir=os.environ.get("DATA_DIR", "data"),
                settle_seconds=float(os.environ.get("SETTLE_SECONDS", "5")),
                future_tolerance_hours=float(os.environ.get("FUTURE_TOLERANCE_HOURS", "24")),
            ),
            "dbt": WarehouseDbtResource(
                project_dir=dbt_project,
                profiles_dir=str(dbt_project.project_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )
