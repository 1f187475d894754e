"""`python -m privacy erase|export-user|expire`: what `make erase`, `make export-user` and `make expire` run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from privacy.identities import parse_user_ids
from settings import SettingError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m privacy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    erase = commands.add_parser("erase", help="erase users from every store and suppress their later events")
    erase.add_argument("--users", required=True, help="user ids, comma-separated")
    export = commands.add_parser("export-user", help="write everything held about users to one file")
    export.add_argument("--users", required=True, help="user ids, comma-separated")
    export.add_argument("--out", type=Path, help="the file to write (default: ./user-export-<time>.json)")
    commands.add_parser("expire", help="delete raw data older than RAW_RETENTION_DAYS")
    look = commands.add_parser("scan", help="list every file and table under DATA_DIR where the ids still occur")
    look.add_argument("--users", required=True, help="ids, comma-separated (user or anonymous ids)")
    args = parser.parse_args(argv)
    try:
        settings = load()
        if args.command == "expire":
            from privacy.retention import expire_with_progress

            print(expire_with_progress(settings).summary())
            return 0
        users = parse_user_ids(args.users)
        if args.command == "scan":
            from privacy.scan import scan

            findings = scan(settings.data_dir, users)
            for finding in findings:
                print(f"{finding.path}\t{finding.how}\t{finding.value}")
            print(f"{len(findings)} place(s) found", file=sys.stderr)
            return 1 if findings else 0
        if args.command == "erase":
            from privacy.erase import erase_with_progress

            print(erase_with_progress(settings, users).summary())
        else:
            from privacy.access import export_with_progress

            print(export_with_progress(settings, users, args.out).summary())
    except (SettingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
