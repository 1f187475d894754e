"""Daily expiry of old raw data (privacy.retention): raw events, rejected rows and landing files older than
RAW_RETENTION_DAYS; marts keep their aggregates."""

import dagster as dg

from ingestion.markup import md_list
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from privacy.retention import expire


@dg.op(
    pool=DUCKDB_WRITER_POOL,
    description="Deletes raw.events rows loaded and dated before now - RAW_RETENTION_DAYS, older rejected rows, "
    "and the landing files loaded and modified before then (their manifest rows stay, marked 'expired'); then "
    "checkpoints the warehouse. Does nothing when RAW_RETENTION_DAYS is 0.",
)
def expire_raw(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dg.Output[dict]:
    report = expire(warehouse.settings())
    context.log.info(report.summary())
    figures = report.figures()
    metadata: dict[str, dg.RawMetadataValue] = {**figures, "cutoff": str(report.cutoff)}
    if report.files_deleted:
        metadata["files"] = dg.MetadataValue.md(md_list(report.files_deleted, max_items=50))
    return dg.Output(figures, metadata=metadata)


@dg.job(
    name="expire_raw_data",
    description="Delete raw data older than RAW_RETENTION_DAYS (raw events, rejected rows, landing files).",
)
def expire_raw_data() -> None:
    expire_raw()


expire_schedule = dg.ScheduleDefinition(
    name="expire_raw_data_daily",
    job=expire_raw_data,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Raw data expiry every day at 02:30 UTC, before the daily refresh (a no-op with RAW_RETENTION_DAYS=0).",
)


@dg.definitions
def definitions() -> dg.Definitions:
    # a module with a @dg.definitions function contributes only what that returns: the job and schedule too
    return dg.Definitions(
        jobs=[expire_raw_data],
        schedules=[expire_schedule],
    )
