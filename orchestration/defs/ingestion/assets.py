"""The landing folder as the raw tables: one asset run loads every complete file not loaded before."""

import importlib
import threading

import dagster as dg

from ingestion import FileResult, IngestSummary, ingest_landing
from ingestion.markup import Markdown, md_escape, md_list, md_table, plain_text
from ingestion.s3_source import sync_s3
from orchestration.defs.quality.data_docs import docs_links, expectations_markdown, failed_expectations
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import LIVE, tier
from stores.schema import connect

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_REJECTED = dg.AssetKey(["raw", "events_rejected"])
RAW_MANIFEST = dg.AssetKey(["raw", "load_manifest"])
RAW_BATCHES = dg.AssetKey(["raw", "batches"])
WARNING_STATUSES = ("damaged", "missing_columns", "failed", "quarantined")


def files_markdown(results: list[FileResult], limit: int = 50) -> str:
    """A markdown table of the files of one run (the first `limit`); file names and details are escaped and cut."""
    return md_table(
        ["file", "status", "rows in", "loaded", "duplicate", "rejected", "erased", "detail"],
        ([r.file_name, r.status, *_counts(r), r.detail] for r in results),
        align="llrrrrrl",
        max_rows=limit,
    )


def _counts(result: FileResult) -> list[int]:
    return [result.rows_in, result.rows_loaded, result.rows_duplicate, result.rows_rejected, result.rows_erased]


def _yes_no(ok: bool) -> str:
    return "yes" if ok else "**no**"


def reconciliation_markdown(files: list[FileResult]) -> str:
    """The files of a gated batch and whether each reconciles, file names escaped and cut."""
    return md_table(
        ["file", "rows in", "loaded", "duplicate", "rejected", "erased", "reconciles"],
        ([f.file_name, *_counts(f), Markdown(_yes_no(f.reconciles))] for f in files),
        align="lrrrrrl",
    )


def _table_counts(warehouse: WarehouseResource) -> dict[str, int]:
    with connect(str(warehouse.warehouse_path)) as con:
        return {
            table: con.execute(f"select count(*) from raw.{table}").fetchone()[0]  # fixed table names
            for table in ("events", "events_rejected", "load_manifest", "batches")
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
    return md_table(["reason", "rows", "first example"], rows, align="lrl")


def _raw_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, kinds={"python", "duckdb"}, group_name="raw", tags=tier(LIVE))


@dg.multi_asset(
    specs=[
        _raw_spec(RAW_EVENTS, "Valid events from the landing folder, each message_id once (ingestion/)."),
        _raw_spec(RAW_REJECTED, "Rows that broke the input contract, with file, line, reason and raw text."),
        _raw_spec(
            RAW_MANIFEST,
            "One row per landing file: checksum, rows in/loaded/duplicate/rejected, status, gate verdict.",
        ),
        _raw_spec(RAW_BATCHES, "One row per ingestion run with the batch gate's verdict (expectations/gate.py)."),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "batch_gate",
            asset=RAW_EVENTS,
            blocking=True,
            description="Batch-level rules: no file lacks a required column, volume near the trailing average, "
            "no sudden jump in the share of nulls. A failing batch is quarantined and stops the models.",
        ),
        dg.AssetCheckSpec(
            "raw_events_expectations",
            asset=RAW_EVENTS,
            blocking=True,
            description="Great Expectations suite raw_events over the batch's rows.",
        ),
        dg.AssetCheckSpec(
            "files_reconcile",
            asset=RAW_MANIFEST,
            blocking=True,
            description="For every file of the batch: rows in = loaded + duplicate + rejected.",
        ),
    ],
    pool=DUCKDB_WRITER_POOL,
)
def landing_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Parse, validate and load every settled landing file that is not in the manifest yet."""
    # The gate needs Great Expectations, which takes seconds to import: import it while the files load (DuckDB
    # releases the GIL) rather than after. What loading imports itself comes first, so that the two threads never
    # import the same modules at once.
    for module in ("numpy", "pandas", "pyarrow", "dateutil", "zoneinfo", "_strptime"):
        importlib.import_module(module)
    importing_gx = threading.Thread(target=importlib.import_module, args=("expectations.runner",), daemon=True)
    importing_gx.start()
    settings = warehouse.ingest_settings()
    context.log.info(f"Loading from {settings.landing_dir} into {settings.warehouse_path}")

    def on_file(result: FileResult) -> None:
        message = (
            f"{plain_text(result.file_name)}: {result.status}; {result.rows_in} in = {result.rows_loaded} loaded + "
            f"{result.rows_duplicate} duplicate + {result.rows_rejected} rejected + {result.rows_erased} erased "
            f"({result.seconds:.1f}s)"
        )
        if result.detail:
            message += f"; {plain_text(result.detail, 500)}"
        (context.log.warning if result.status in WARNING_STATUSES else context.log.info)(message)

    if settings.s3_bucket:
        synced = sync_s3(settings)
        context.log.info(f"s3://{plain_text(settings.s3_bucket)}/{plain_text(settings.s3_prefix)}: {synced.summary()}")
        for key, reason in list(synced.skipped.items())[:20]:
            context.log.warning(f"{plain_text(key, 300)} not copied: {reason}")
    summary: IngestSummary = ingest_landing(settings, on_file=on_file)
    if summary.symlinks_skipped:
        context.log.warning(
            f"{len(summary.symlinks_skipped)} symlink(s) in the landing folder were not followed nor loaded: "
            + ", ".join(plain_text(name) for name in summary.symlinks_skipped[:10])
            + (" ..." if len(summary.symlinks_skipped) > 10 else "")
        )
    importing_gx.join()
    gate = _run_gate(warehouse, summary.batch_id)
    if not gate.passed:
        context.log.error(f"Batch {gate.batch_id} quarantined; staging leaves its files out until it is released.")
    counts = _table_counts(warehouse)
    loaded_files = [r.file_name for r in summary.files if r.rows_in]
    common = {
        "files_processed": len(summary.files),
        "files_still_being_written": summary.files_waiting,
        "files_failed": len(summary.failed),
        "symlinks_skipped": len(summary.symlinks_skipped),
    }
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={
            **common,
            "rows_loaded": summary.rows_loaded,
            "rows_duplicate": summary.rows_duplicate,
            "rows_erased": summary.rows_erased,
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
            "failed_files": dg.MetadataValue.md(files_markdown(summary.failed) if summary.failed else "none"),
            "skipped_symlinks": dg.MetadataValue.md(md_list(summary.symlinks_skipped, max_items=50) or "none"),
            "all_files_reconcile": all(r.reconciles for r in summary.files),
            "dagster/row_count": counts["load_manifest"],
        },
    )
    yield dg.MaterializeResult(
        asset_key=RAW_BATCHES,
        metadata={"batch_id": gate.batch_id, "gate_passed": gate.passed, "dagster/row_count": counts["batches"]},
    )
    yield from _gate_checks(gate)


def _run_gate(warehouse: WarehouseResource, batch_id: str):
    # GX takes seconds to import: only runs that ingest pay for it, not every load of the code location.
    from expectations.gate import run_gate

    runner = warehouse.suite_runner()
    settings = warehouse.settings()
    # bounded: the suites' selection of a large batch spills to disk instead of filling the machine (a 100M-event
    # first load took the run process past 21 GB without a bound)
    with connect(str(warehouse.warehouse_path), memory_limit=settings.quality.suite_memory_limit) as con:
        return run_gate(con, batch_id, runner, settings.gate)


def _batch_gate_result(gate) -> dg.AssetCheckResult:
    """Fails (and blocks) on this batch's problems; warns, without blocking, while earlier batches sit quarantined."""
    metadata = {
        "batch_id": gate.batch_id,
        "rows_loaded": gate.rows_loaded,
        "problems": dg.MetadataValue.md(md_list(gate.batch_problems, max_chars=500, max_items=50) or "none"),
        "files_still_quarantined": len(gate.still_quarantined),
    }
    if gate.batch_problems:
        return dg.AssetCheckResult(
            asset_key=RAW_EVENTS, check_name="batch_gate", passed=False, metadata=metadata,
            description=_joined(gate.batch_problems, max_chars=500),
        )  # fmt: skip
    if gate.still_quarantined:
        shown = _joined(gate.still_quarantined, separator=", ", limit=5)
        return dg.AssetCheckResult(
            asset_key=RAW_EVENTS, check_name="batch_gate", passed=False, severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"This batch passed; {len(gate.still_quarantined)} file(s) of earlier batches are still "
            f"quarantined and left out of the models: {shown}",
        )  # fmt: skip
    return dg.AssetCheckResult(asset_key=RAW_EVENTS, check_name="batch_gate", passed=True, metadata=metadata)


def _joined(texts: list[str], *, separator: str = "; ", limit: int = 10, max_chars: int = 200) -> str:
    """The first `limit` texts escaped for a check description (rendered as Markdown), then how many more."""
    shown = separator.join(md_escape(text, max_chars) for text in texts[:limit])
    return shown + (f" … {len(texts) - limit} more" if len(texts) > limit else "")


def _gate_checks(gate) -> list[dg.AssetCheckResult]:
    suite = gate.suite
    suite_metadata: dict[str, object] = {"rows_validated": suite.rows if suite else 0}
    if suite is not None:
        suite_metadata["expectations"] = dg.MetadataValue.md(expectations_markdown(suite))
        suite_metadata["failed_expectations"] = len(suite.failures)
        suite_metadata.update(docs_links(suite))
    return [
        _batch_gate_result(gate),
        dg.AssetCheckResult(
            asset_key=RAW_EVENTS,
            check_name="raw_events_expectations",
            passed=gate.suite_passed,
            metadata=suite_metadata,
            description=None if suite is None else failed_expectations(suite),
        ),
        dg.AssetCheckResult(
            asset_key=RAW_MANIFEST,
            check_name="files_reconcile",
            passed=gate.reconciles,
            metadata={
                "files": dg.MetadataValue.md(reconciliation_markdown(gate.files)),
                "files_checked": len(gate.files),
            },
        ),
    ]
