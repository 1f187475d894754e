"""`ingest-landing`: load the landing folder into the warehouse from a shell, with a progress bar."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from ingestion.loader import FileResult, ingest_landing
from ingestion.markup import plain_text
from ingestion.s3_source import sync_s3
from settings import IngestSettings


def main(argv: list[str] | None = None) -> int:
    """Run one ingestion over `$DATA_DIR/landing`; exit 1 when any file was damaged, lacked columns or failed."""
    parser = argparse.ArgumentParser(prog="ingest-landing", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="root of runtime state (default: $DATA_DIR or data/)")
    parser.add_argument("--settle-seconds", type=float, help="skip files modified more recently than this")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    settings = IngestSettings.from_env()
    if args.data_dir:
        settings = replace(settings, data_dir=args.data_dir.resolve())
    if args.settle_seconds is not None:
        settings = replace(settings, settle_seconds=args.settle_seconds)

    if settings.s3_bucket:
        synced = sync_s3(settings)
        print(f"s3://{plain_text(settings.s3_bucket)}/{plain_text(settings.s3_prefix)}: {synced.summary()}")
        for key, reason in synced.skipped.items():
            print(f"  {plain_text(key, 300)} not copied: {reason}")
    bar = tqdm(unit=" rows", unit_scale=True, disable=args.quiet, desc="ingest")

    def on_batch(file_name: str, rows: int) -> None:
        bar.set_postfix_str(plain_text(file_name, 80), refresh=False)
        bar.update(rows)

    def on_file(result: FileResult) -> None:
        if result.status not in ("loaded", "repeat") or result.rows_rejected:
            bar.write(
                # names and details as one line of text: no terminal escape or line break from a file reaches it
                f"{plain_text(result.file_name, 500)}: {result.status}, {result.rows_rejected} rejected"
                + (f" ({plain_text(result.detail, 2000)})" if result.detail else "")
            )

    summary = ingest_landing(settings, on_batch=on_batch, on_file=on_file)
    bar.close()
    print(
        f"{len(summary.files)} file(s): {summary.rows_in:,} rows in, {summary.rows_loaded:,} loaded, "
        f"{summary.rows_duplicate:,} duplicate, {summary.rows_rejected:,} rejected, {summary.rows_erased:,} erased "
        f"(suppressed users) in {summary.seconds:.1f}s; "
        f"{summary.files_waiting} file(s) still being written; {len(summary.failed)} failed; "
        f"{len(summary.symlinks_skipped)} symlink(s) skipped. Rejected rows: raw.events_rejected."
    )
    failed = [r for r in summary.files if r.status in ("damaged", "missing_columns", "failed", "quarantined")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
