"""Great Expectations suites on dbt models as asset checks (suites and runner live in expectations/)."""

import dagster as dg

from orchestration.defs.quality.data_docs import docs_links, expectations_markdown, failed_expectations
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from stores.schema import connect


def suite_check_result(suite_name: str, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Run one suite and say which expectations failed, on how many rows, with examples.

    A suite with a watermark column (stg_events) validates only the rows (re)computed since its last pass.
    """
    # GX takes seconds to import: pay for it when a check runs, not when the code location loads.
    from expectations import SUITES
    from expectations.watermarks import validate_past_watermark

    runner = warehouse.suite_runner()
    spec = SUITES[suite_name]
    scope = "whole table"
    # bounded, as the batch gate's: the stg_events suite of a 100M-event first build took the process past 20 GB
    memory_limit = warehouse.settings().quality.suite_memory_limit
    if spec.watermark_column is None:
        with connect(str(warehouse.warehouse_path), read_only=True, memory_limit=memory_limit) as con:
            outcome = runner.validate(con, spec)
    else:
        with connect(str(warehouse.warehouse_path), memory_limit=memory_limit) as con:
            outcome, since = validate_past_watermark(runner, con, spec)
        if since is not None:
            scope = f"rows with {spec.watermark_column} after {since:%Y-%m-%d %H:%M:%S} (earlier rows passed before)"
    metadata: dict[str, object] = {
        "scope": scope,
        "rows_validated": outcome.rows,
        "chunks": outcome.chunks,
        "failed_expectations": len(outcome.failures),
        "expectations": dg.MetadataValue.md(expectations_markdown(outcome)),
    }
    metadata.update(docs_links(outcome))
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata=metadata,
        description=failed_expectations(outcome),
    )


def suite_check(asset: dg.AssetKey, suite_name: str, description: str) -> dg.AssetChecksDefinition:
    """A blocking check that runs one suite on one dbt model."""

    @dg.asset_check(
        asset=asset, name=f"{suite_name}_expectations", blocking=True, pool=DUCKDB_WRITER_POOL, description=description
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return suite_check_result(suite_name, warehouse)

    return _check


stg_events_expectations = suite_check(
    dg.AssetKey(["staging", "stg_events"]),
    "stg_events",
    "GX suite stg_events: ids present and unique, snake_case names, known types, orders not negative.",
)
cohort_retention_expectations = suite_check(
    dg.AssetKey(["marts", "cohort_retention"]),
    "cohort_retention",
    "GX suite cohort_retention: rates in [0, 1], retained <= unbounded <= cohort size, one row per key.",
)
daily_kpis_expectations = suite_check(
    dg.AssetKey(["marts", "daily_kpis"]),
    "daily_kpis",
    "GX suite daily_kpis: one row a day, DAU <= WAU <= MAU, shares in [0, 1].",
)
