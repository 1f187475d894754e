"""Great Expectations suites on dbt models as asset checks (suites and runner live in expectations/)."""

import dagster as dg

from ingestion.schema import connect
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource


def suite_check_result(suite_name: str, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Run one suite over its whole table and say which expectations failed, on how many rows, with examples."""
    # GX takes seconds to import: pay for it when a check runs, not when the code location loads.
    from expectations import SUITES, SuiteRunner

    runner = SuiteRunner(warehouse.data_path)
    with connect(str(warehouse.warehouse_path), read_only=True) as con:
        outcome = runner.validate(con, SUITES[suite_name])
    metadata: dict[str, object] = {
        "rows_validated": outcome.rows,
        "chunks": outcome.chunks,
        "failed_expectations": len(outcome.failures),
        "expectations": dg.MetadataValue.md(outcome.markdown()),
    }
    if outcome.docs_index is not None:
        metadata["data_docs"] = dg.MetadataValue.path(str(outcome.docs_index))
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata=metadata,
        description=None if outcome.success else "; ".join(f.expectation for f in outcome.failures),
    )


@dg.asset_check(
    asset=dg.AssetKey(["staging", "stg_events"]),
    blocking=True,
    pool=DUCKDB_WRITER_POOL,
    description="GX suite stg_events: ids present and unique, snake_case names, known types, orders not negative.",
)
def stg_events_expectations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return suite_check_result("stg_events", warehouse)


@dg.asset_check(
    asset=dg.AssetKey(["marts", "cohort_retention"]),
    blocking=True,
    pool=DUCKDB_WRITER_POOL,
    description="GX suite cohort_retention: rates in [0, 1], retained <= unbounded <= cohort size, one row per key.",
)
def cohort_retention_expectations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return suite_check_result("cohort_retention", warehouse)


@dg.asset_check(
    asset=dg.AssetKey(["marts", "daily_kpis"]),
    blocking=True,
    pool=DUCKDB_WRITER_POOL,
    description="GX suite daily_kpis: one row a day, DAU <= WAU <= MAU, shares in [0, 1].",
)
def daily_kpis_expectations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return suite_check_result("daily_kpis", warehouse)
