"""The published copy analysts and the dashboard read, with freshness checks on what it publishes."""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from ingestion.markup import md_table
from orchestration.defs.dbt.assets import DBT_MODEL_KEYS
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from serving import publish
from settings import load as load_settings
from stores.schema import connect

MART_KEYS = [key for key in DBT_MODEL_KEYS if key.path[0] == "marts"]
SERVING_COPY = dg.AssetKey(["serving", "serving_copy"])
# ml.* tables written by the ML assets (orchestration/defs/ml) are published too, so the copy waits for them
ML_TABLE_KEYS = [dg.AssetKey(["ml", name]) for name in ("user_clusters", "churn_scores", "model_metrics")]
# a direct dependency, so that the blocking stg_events suite (run after the dbt invocation that builds staging and the
# marts together) stops the publish when it fails
STG_EVENTS = dg.AssetKey(["staging", "stg_events"])


@dg.asset(
    key=SERVING_COPY,
    deps=[*MART_KEYS, *ML_TABLE_KEYS, STG_EVENTS],
    group_name="serving",
    kinds={"duckdb", "parquet"},
    pool=DUCKDB_WRITER_POOL,
    description="marts.* and ml.* copied to a DuckDB file and Parquet exports in a new version folder under "
    "$DATA_DIR/published, with ops.* (load manifest, gate verdicts, rejects per file and reason) for the "
    "dashboard's data-health page; one symlink rename switches both in together, durably. Analysts, `make sql` "
    "and the dashboard read only this, at $DATA_DIR/serving.duckdb and $DATA_DIR/exports (symlinks into the "
    "current version).",
)
def serving_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with connect(str(warehouse.warehouse_path)) as con:
        result = publish(con, warehouse.data_path / "serving.duckdb", warehouse.data_path / "exports")
    context.log.info(f"Published {len(result.tables)} tables to {result.version_dir} (now {result.serving_path})")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.serving_path)),
            "exports": dg.MetadataValue.path(str(result.exports_dir)),
            "version": dg.MetadataValue.path(str(result.version_dir)),
            "tables": dg.MetadataValue.md(md_table(["table", "rows"], result.tables.items(), align="lr")),
            "seconds_since_latest_load": result.seconds_since_latest_load,
            "seconds_since_latest_event": result.seconds_since_latest_event,
            "latest_event_at": str(result.latest_event_at),
        }
    )


# the checks that build_last_update_freshness_checks makes: one of this name on each asset
FRESHNESS_CHECK_KEYS = [dg.AssetCheckKey(key, "freshness_check") for key in (*MART_KEYS, SERVING_COPY)]


def freshness_checks(bound: timedelta) -> Sequence[dg.AssetChecksDefinition]:
    """A freshness check on every mart and on the serving copy: it fails when one is older than `bound`."""
    return dg.build_last_update_freshness_checks(assets=[*MART_KEYS, SERVING_COPY], lower_bound_delta=bound)


@dg.definitions
def serving() -> dg.Definitions:
    """The serving copy, the freshness checks and their sensor (a module with a @dg.definitions function
    contributes only what it returns). The bound (FRESHNESS_BOUND_MINUTES) is part of each check's definition, so
    it is read when the code location loads, not through a resource at run time."""
    bound = timedelta(minutes=load_settings().serving.freshness_bound_minutes)
    checks = freshness_checks(bound)
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
    )
    return dg.Definitions(assets=[serving_copy], asset_checks=checks, sensors=[sensor])
