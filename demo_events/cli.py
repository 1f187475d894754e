"""`demo-events`: write demo Segment events into the landing folder, plus their ground truth."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from demo_events.config import FORMATS, GeneratorConfig
from demo_events.generate import generate, users_for_events
from demo_events.hostile import plant_hostile
from settings import load as load_settings


def _end(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line options; defaults come from GeneratorConfig."""
    d = GeneratorConfig()
    parser = argparse.ArgumentParser(prog="demo-events", description=__doc__)
    add = parser.add_argument
    add(
        "--data-dir",
        type=Path,
        default=load_settings().data_dir,
        help="root of runtime state; files go to <data-dir>/landing (default: $DATA_DIR or data)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--users", type=int, help=f"number of users (default {d.users})")
    size.add_argument("--events", type=int, help="target number of rows; users are scaled from a pilot run")
    add("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    add("--months", type=int, default=d.months, help=f"months of signups before the end (default {d.months})")
    add("--end", type=_end, default=d.end, help="end of the data, ISO-8601 (default %(default)s)")
    add("--dirty-share", type=_share, default=d.dirty_share, help="share of defective rows (%(default)s)")
    add("--late-share", type=_share, default=d.late_share, help="share of events arriving late (%(default)s)")
    add("--camel-share", type=_share, default=d.camel_share, help="share of camelCase files (%(default)s)")
    add("--file-rows", type=int, default=d.file_rows, help="rows per file (%(default)s)")
    add(
        "--format",
        dest="file_format",
        choices=["mix", *FORMATS],
        default=d.file_format,
        help="file format (default: a mix, mostly jsonl.gz)",
    )
    add("--lift", type=float, default=d.lift, help="true relative lift of the treatment (%(default)s)")
    add("--quiet", action="store_true", help="no progress bar")
    add(
        "--hostile",
        action="store_true",
        help="only plant hostile files (unplanned variants, a 512 MiB line, BOMs, ancient times, gzip garbage, deep "
        "nesting, a symlink, a folder named like a file) and one clean file after them into the landing folder",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate a data set and print a one-line summary."""
    args = build_parser().parse_args(argv)
    if args.hostile:
        landing = args.data_dir.expanduser().resolve() / "landing"
        plan = plant_hostile(landing)
        kept = ", ".join(sorted(plan.users_kept | {plan.clean_user}))
        print(
            f"{len(plan.files)} file(s) -> {landing}: after a run {kept} are in the marts; the rest is rejected "
            "or flagged"
        )
        return 0
    try:
        config = GeneratorConfig(
            seed=args.seed,
            months=args.months,
            end=args.end,
            dirty_share=args.dirty_share,
            late_share=args.late_share,
            camel_share=args.camel_share,
            file_rows=args.file_rows,
            file_format=args.file_format,
            lift=args.lift,
        )
        if args.users is not None:
            config = replace(config, users=args.users)
        elif args.events is not None:
            config = replace(config, users=users_for_events(config, args.events))
    except ValueError as error:
        print(f"demo-events: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    data_dir = args.data_dir.expanduser().resolve()
    truth = generate(config, data_dir, progress=not args.quiet)
    exp = truth.experiment
    print(
        f"{truth.rows_written:,} rows in {len(truth.files)} file(s) -> {data_dir / 'landing'}: "
        f"{truth.clean_events:,} events of {truth.users:,} users, "
        f"{sum(truth.dirty_rows.values()):,} defective, {truth.late_arrivals:,} late; "
        f"experiments {exp['exposed_users']:,} exposed (A/B and 2x2 factorial); truth in {data_dir / 'demo_truth'} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
