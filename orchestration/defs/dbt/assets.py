"""Every dbt model as a Dagster asset and every dbt test as an asset check.

Three dbt invocations, so that each run pays dbt's start-up once for what it needs (the tiers are the models'
`meta.refresh_tier`, see orchestration/tiers.py):
- `dbt_models`: the live tier (seeds, staging, intermediate models and the marts read live: KPIs, segments,
  lifecycle, audiences, the main retention matrix), what the landing refresh runs;
- `dbt_follow_up`: the follow-up and slow tiers that do not read the ML assets' tables (the ML feature marts, the
  training snapshots, the retention variants and the experiment analysis);
- `dbt_models_reading_ml`: the marts that read ml.* (cluster profiles, the churn-risk audience), after the ML
  assets have written it. (Left to itself, Dagster would split one selection around the ML assets into more
  invocations, each paying dbt's start-up.)
The Great Expectations suites on staging.stg_events and the charted marts run after `dbt_models` as blocking
checks: a failing suite stops the run before anything is published to the serving copy.
"""

import importlib
import json
import threading
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.dbt.mart_charts import CHARTS, chart_metadata
from orchestration.defs.dbt.project import dbt_project
from orchestration.defs.dbt.translator import WarehouseTranslator
from orchestration.defs.dbt.workarounds import keep_parse_state
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import FOLLOW_UP, LIVE, SLOW, dbt_select
from spark_warehouse.catalog import attach_tables, export_ledger
from stores.schema import connect

READS_ML = "source:ml+"


def _asset_key(context: dg.AssetExecutionContext, event: object) -> dg.AssetKey | None:
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name)
    return getattr(event, "asset_key", None)


def charted_and_downstream(assets_def: dg.AssetsDefinition) -> set[dg.AssetKey]:
    """The charted marts of this dbt op and every asset of the op that depends on one of them."""
    upstream = assets_def.asset_deps
    held = set(CHARTS) & set(upstream)
    grew = True
    while grew:
        grew = False
        for key, parents in upstream.items():
            if key not in held and parents & held:
                held.add(key)
                grew = True
    return held


def dbt_vars_args(warehouse: WarehouseResource) -> list[str]:
    """`--vars` with what the warehouse resource hands dbt (the profile reads `data_dir` from it)."""
    return ["--vars", json.dumps(warehouse.dbt_vars(), sort_keys=True)]


def dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource) -> Iterator:
    """`dbt build` of the op's selection on the engine DBT_TARGET names; the events of charted marts and of what
    depends on them are held back until dbt has exited (the charts read the warehouse, which dbt holds), then sent
    in their order with the charts added. Everything else streams as dbt goes.

    On Spark, raw.* and ml.* go from warehouse.duckdb to Spark's Parquet tables first, and warehouse.duckdb gets
    views over what dbt built after (spark_warehouse.catalog), so that every reader after this step is the same."""
    engine = warehouse.settings().engine
    if engine.on_spark:
        with connect(str(warehouse.warehouse_path)) as con:
            exported = export_ledger(con, warehouse.data_path)
        context.log.info(
            f"to Spark: raw.events {exported.files_written} file(s) written ({exported.rows_written:,} rows), "
            f"{exported.files_removed} removed; the other raw.* and ml.* tables written whole"
        )
    waits = charted_and_downstream(context.assets_def)
    held = []
    # matplotlib takes a second or more to import: import it while dbt runs rather than after, when the marts'
    # events (and so the publish) wait for the charts
    importing_charts = threading.Thread(target=importlib.import_module, args=("orchestration.charts",), daemon=True)
    if waits:
        importing_charts.start()
    # no JSON artifacts: nothing reads them (Dagster takes dbt's events from its log stream, and the parse state is
    # a msgpack file dbt writes anyway), and writing them took 1-2 s of every invocation
    command = ["build", "--no-write-json", "--target", engine.dbt_target, *dbt_vars_args(warehouse)]
    invocation = dbt.cli(command, context=context)
    for event in invocation.stream():
        # a held model's children are held too, so no output ever precedes its parent's
        if _asset_key(context, event) in waits:
            held.append(event)
        else:
            yield event
    if engine.on_spark:
        with connect(str(warehouse.warehouse_path)) as con:
            attached = attach_tables(con, warehouse.data_path)
        context.log.info(f"warehouse.duckdb: views over {len(attached)} of Spark's tables")
    if waits:
        importing_charts.join()
    for event in held:
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            pictures = chart_metadata(key, warehouse.warehouse_path, context.log)
            event = event.with_metadata({**event.metadata, **pictures})
        yield event
    keep_parse_state(invocation.target_path)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=dbt_select(LIVE),
    dagster_dbt_translator=WarehouseTranslator(),
    pool=DUCKDB_WRITER_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Seeds, staging, intermediate models and marts with their tests."""
    yield from dbt_build(context, dbt, warehouse)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=dbt_select(FOLLOW_UP, SLOW),
    exclude=READS_ML,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=DUCKDB_WRITER_POOL,
)
def dbt_follow_up(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """The ML feature marts (features at as_of, churn snapshots at past cutoffs) and the follow-up marts, with
    their tests."""
    yield from dbt_build(context, dbt, warehouse)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=READS_ML,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=DUCKDB_WRITER_POOL,
)
def dbt_models_reading_ml(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Marts built on the ML assets' tables (ml.*), with their tests."""
    yield from dbt_build(context, dbt, warehouse)


# every dbt model's asset key, whichever invocation builds it
DBT_MODEL_KEYS = sorted([*dbt_models.keys, *dbt_follow_up.keys, *dbt_models_reading_ml.keys], key=lambda key: key.path)
