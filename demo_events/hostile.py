"""Hostile landing files: every kind of file or event a client or a dropped file can bring, and one clean file after.

`plant_hostile` writes them under `<landing>/hostile/` (and the clean file at the top level, sorted after them), so a
run on a finished warehouse shows what the input contract promises: the run succeeds, each hostile row is rejected
or flagged with its reason, and the clean file's user reaches the serving copy. `demo-events --hostile` calls it;
the end-to-end test and `bench.hostile_run` use the same files.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

HOSTILE_FOLDER = "hostile"
CLEAN_FILE = "zz_clean.jsonl"
MIB = 1 << 20
RECEIVED_AT = "2026-10-01T12:00:00Z"  # after every planted event time, inside the demo's data


@dataclass(frozen=True)
class HostilePlan:
    """What the planted files should lead to, for whoever checks a run on them."""

    files: tuple[str, ...]  # landing-relative names of the regular files written
    users_kept: frozenset[str]  # users whose good events sit beside hostile ones: they must load
    users_rejected: frozenset[str]  # users whose every event is hostile: they must never reach a mart
    clean_user: str = "clean_user"
    not_landing_files: tuple[str, ...] = field(default=())  # a symlink and a folder named like a file


def _event(message_id: str, user_id: str, when: str = "2026-10-01T10:00:00Z", **fields: object) -> dict:
    return {
        "message_id": message_id,
        "user_id": user_id,
        "type": "track",
        "event": "Product Viewed",
        "timestamp": when,
        "received_at": RECEIVED_AT,
        **fields,
    }


def _lines(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def _settle(path: Path, settled: bool) -> str:
    if settled:  # old enough to count as completely written, whatever SETTLE_SECONDS says
        past = path.stat().st_mtime - 3600
        os.utime(path, (past, past))
    return path.name


def _write(path: Path, payload: bytes, settled: bool) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return _settle(path, settled)


def huge_line_gzip(path: Path, line_bytes: int, after: list[dict]) -> int:
    """A gzip file inflating to one line of `line_bytes` bytes and then `after`, built without holding the line."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b'{"message_id": "huge-1", "user_id": "huge_user", "padding": "')]
    block = b"x" * MIB
    parts += [compressor.compress(block) for _ in range(line_bytes // MIB)]
    parts += [compressor.compress(b'"}\n' + _lines(after)), compressor.flush()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts))
    return path.stat().st_size


def plant_hostile(
    landing: Path,
    *,
    huge_line_bytes: int = 512 * MIB,
    link_target: Path = Path("/etc/passwd"),
    settled: bool = True,
) -> HostilePlan:
    """Write the hostile files under `landing/hostile/` and the clean file `landing/zz_clean.jsonl`."""
    folder = landing / HOSTILE_FOLDER
    # a variant the seed does not plan, an experiment it does not know, a factorial variant naming no levels, a
    # variant that is an object, and markup as a name; one user each (a user's first exposure is the one counted)
    exposures = [
        ("checkout_redesign", "evil"),
        ("made_up_experiment", "x"),
        ("onboarding_2x2", "no-plus-sign"),
        ("checkout_redesign", {"a": 1}),
        ("checkout_redesign", "**x**|<img src=x onerror=alert(1)>"),
    ]
    viewed = [
        _event(f"evil-{i}", f"evil_user_{i}", "2026-10-01T09:00:00Z", event="Experiment Viewed",
               properties={"experiment_id": experiment, "variant": variant})
        for i, (experiment, variant) in enumerate(exposures, start=1)
    ]  # fmt: skip
    names = [_write(folder / "a_unplanned_variants.jsonl", _lines(viewed), settled)]
    huge = folder / "b_huge_line.jsonl.gz"
    huge_line_gzip(huge, huge_line_bytes, [_event("after-huge-1", "after_huge_user")])
    names.append(_settle(huge, settled))
    bom = b"\xef\xbb\xbf"
    names.append(_write(folder / "c_bom.jsonl", bom + _lines([_event("bom-1", "bom_user")]), settled))
    names.append(
        _write(
            folder / "d_bom.csv",
            bom + b"message_id,user_id,type,event,timestamp\nbom-csv-1,bom_csv_user,track,Product Viewed,"
            b"2026-10-01T10:00:00Z\n",
            settled,
        )
    )
    ancient = [
        _event("ancient-1", "ancient_user", "0001-01-01T00:00:00+05:00"),
        _event("ancient-2", "ancient_user", "1999-12-31T23:59:59Z"),
        _event("ancient-3", "ancient_user", "-0044-03-15T12:00:00Z"),
    ]
    names.append(_write(folder / "e_ancient.jsonl", _lines(ancient), settled))
    good = gzip.compress(_lines([_event("garbage-tail-1", "tail_user")]), mtime=0)
    names.append(_write(folder / "f_trailing_garbage.jsonl.gz", good + b"this is not gzip", settled))
    # nested 300 deep (written as text: JSON libraries refuse to build it); revenue that overflows a double, and
    # one that is not a number
    deep = orjson.dumps(_event("deep-1", "deep_user", properties="DEEP")).replace(
        b'"DEEP"', b'{"d":' * 300 + b'"bottom"' + b"}" * 300
    )
    odd = (
        deep
        + b"\n"
        + _lines(
            [
                _event("revenue-1", "revenue_user", event="Order Completed", properties={"revenue": "1e400"}),
                _event("revenue-2", "revenue_user", event="Order Completed", properties={"revenue": "NaN"}),
            ]
        )
    )
    names.append(_write(folder / "g_deep_and_odd_numbers.jsonl", odd, settled))
    link = folder / "h_link.jsonl"
    if not link.is_symlink():
        link.symlink_to(link_target)
    (folder / "i_folder.jsonl").mkdir(exist_ok=True)
    clean = _write(landing / CLEAN_FILE, _lines([_event("clean-1", "clean_user", "2026-10-01T11:00:00Z")]), settled)
    return HostilePlan(
        files=(*(f"{HOSTILE_FOLDER}/{name}" for name in names), clean),
        users_kept=frozenset({"after_huge_user", "bom_user", "bom_csv_user", "tail_user", "deep_user"}),
        users_rejected=frozenset({"ancient_user", "huge_user"}),
        not_landing_files=(f"{HOSTILE_FOLDER}/h_link.jsonl", f"{HOSTILE_FOLDER}/i_folder.jsonl"),
    )
