"""The published copy analysts and the dashboard read (its freshness checks: automation.py beside this)."""

import dagster as dg

from ingestion.markup import md_table
from orchestration.defs.dbt.assets import DBT_MODEL_KEYS
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import PUBLISH, tier
from serving import publish
from stores.schema import TABLES, connect

MART_KEYS = [key for key in DBT_MODEL_KEYS if key.path[0] == "marts"]
SERVING_COPY = dg.AssetKey(["serving", "serving_copy"])
# ml.* tables (written by the Python assets of orchestration/defs/ml and experiments) are published too, so the copy
# waits for them
ML_TABLE_KEYS = [dg.AssetKey(name.split(".")) for name, table in TABLES.items() if table.schema == "ml"]
# a direct dependency, so that the blocking stg_events suite (run after the dbt invocation that builds staging and the
# marts together) stops the publish when it fails
STG_EVENTS = dg.AssetKey(["staging", "stg_events"])


@dg.asset(
    key=SERVING_COPY,
    deps=[*MART_KEYS, *ML_TABLE_KEYS, STG_EVENTS],
    group_name="serving",
    tags=tier(PUBLISH),
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
