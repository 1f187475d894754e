"""The erasure ledger: one JSON line per erasure request, readable by an auditor, holding no clear id.

Each request writes a `requested` line when it starts and a `finished` line when every store is done (with what
was removed from each); a request with no `finished` line did not complete and is run again by the next erasure of
the same ids. Ids are keyed hashes (privacy.keys, purpose "subject"), the same as on the suppression list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stores.files import fsync_dir

MAX_LEDGER_LINE_BYTES = 1 << 20


def now_text() -> str:
    """The current time as ISO-8601 UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(path: Path, entry: dict[str, Any]) -> None:
    """Append one entry (fsynced: the ledger is the record that an erasure happened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    with path.open("a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_dir(path.parent)


def entries(path: Path) -> Iterator[dict[str, Any]]:
    """The ledger's entries in order (a torn last line, from a crash mid-write, is skipped)."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if len(raw) > MAX_LEDGER_LINE_BYTES:
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                continue


def unfinished(path: Path) -> list[dict[str, Any]]:
    """`requested` entries with no `finished` entry of the same request id."""
    started: dict[str, dict[str, Any]] = {}
    for entry in entries(path):
        if entry.get("event") == "requested":
            started[entry["request_id"]] = entry
        elif entry.get("event") == "finished":
            started.pop(entry.get("request_id"), None)
    return list(started.values())
