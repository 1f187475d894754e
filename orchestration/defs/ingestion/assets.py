"""The landing folder as the raw tables: one asset run loads every complete file not loaded before."""

import dagster as dg

from ingestion import FileResult, IngestSummary, ingest_landing
from ingestion.schema import connect
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_REJECTED = dg.AssetKey(["raw", "events_rejected"])
RAW_MANIFEST = dg.AssetKey(["raw", "load_manifest"])


def files_markdown(results: list[FileResult], limit: int = 50) -> str:
    """A markdown table of the files of one run (the first `limit`)."""
    lines = [
        "| file | status | rows in | loaded | duplicate | rejected | detail |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results[:limit]:
        detail = (r.detail or "").replace("|", "\\|")
        lines.append(
            f"| {r.file_name} | {r.status} | {r.rows_in} | {r.rows_loaded} | {r.rows_duplicate} | "
            f"{r.rows_rejected} | {detail} |"
        )
    if len(results) > limit:
        lines.append(f"| ... {len(results) - limit} more | | | | | | |")
    return "\n".join(lines)


def _table_counts(warehouse: WarehouseResource) -> dict[str, int]:
    with connect(str(warehouse.warehouse_path)) as con:
        return {
            table: con.execute(f"select count(*) from raw.{table}").fetchone()[0]  # fixed table names
            for table in ("events", "events_rejected", "load_manifest")
        }


def _rejection_reasons(warehouse: WarehouseResource, files: list[str]) -> str:
    if not files:
        return "no rows rejected"
    with connect(str(warehouse.warehouse_path)) as con:
        rows = con.execute(
            """
            select reason, count(*) as n_rows, min(source_file || ':' || line_number) as example
            from raw.events_rejected where source_file in (select unnest($files))
            group by reason order by n_rows desc limit 20
            """,
            {"files": files},
        ).fetchall()
    if not rows:
        return "no rows rejected"
    lines = ["| reason | rows | first example |", "|---|---:|---|"]
    lines += [f"| {reason} | {n} | {example} |" for reason, n, example in rows]
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RAW_EVENTS,
            description="Valid events from the landing folder, each message_id once (ingestion/).",
            kinds={"python", "duckdb"},
            group_name="raw",
        ),
        dg.AssetSpec(
            RAW_REJECTED,
            description="Rows that broke the input contract, with file, line, reason and raw text.",
            kinds={"python", "duckdb"},
            group_name="raw",
        ),
        dg.AssetSpec(
            RAW_MANIFEST,
            description="One row per landing file: checksum, rows in/loaded/duplicate/rejected, status.",
            kinds={"python", "duckdb"},
            group_name="raw",
        ),
    ],
    pool=DUCKDB_WRITER_POOL,
)
def landing_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Parse, validate and load every settled landing file that is not in the manifest yet."""
    settings = warehouse.ingest_settings()
    context.log.info(f"Loading from {settings.landing_dir} into {settings.warehouse_path}")

    def on_file(result: FileResult) -> None:
        message = (
            f"{result.file_name}: {result.status}; {result.rows_in} in = {result.rows_loaded} loaded + "
            f"{result.rows_duplicate} duplicate + {result.rows_rejected} rejected ({result.seconds:.1f}s)"
        )
        if result.detail:
            message += f"; {result.detail}"
        (context.log.warning if result.status in ("damaged", "missing_columns") else context.log.info)(message)

    summary: IngestSummary = ingest_landing(settings, on_file=on_file)
    counts = _table_counts(warehouse)
    loaded_files = [r.file_name for r in summary.files if r.rows_in]
    common = {"files_processed": len(summary.files), "files_still_being_written": summary.files_waiting}
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={
            **common,
            "rows_loaded": summary.rows_loaded,
            "rows_duplicate": summary.rows_duplicate,
            "dagster/row_count": counts["events"],
            "seconds": round(summary.seconds, 2),
        },
    )
    yield dg.MaterializeResult(
        asset_key=RAW_REJECTED,
        metadata={
            **common,
            "rows_rejected": summary.rows_rejected,
            "dagster/row_count": counts["events_rejected"],
            "reasons": dg.MetadataValue.md(_rejection_reasons(warehouse, loaded_files)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=RAW_MANIFEST,
        metadata={
            **common,
            "files": dg.MetadataValue.md(files_markdown(summary.files)),
            "all_files_reconcile": all(r.reconciles for r in summary.files),
            "dagster/row_count": counts["load_manifest"],
        },
    )
