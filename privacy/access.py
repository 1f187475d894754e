"""Right of access: everything held about some users, written to one JSON file.

The file holds the subject (the given ids and the anonymous ids stitched to them, privacy.identities), then:

- every warehouse table of the store registry that holds personal data (dbt's tables included), with the rows that
  belong to the subject: raw.events (and the per-user dbt tables that carry both ids) by `identities.event_filter`,
  so a shared device's events of another signed-in user are left out; raw.events_rejected by the ids appearing as a
  whole token in the raw line (no id column there: `u1` does not match `u10`); every other table by `user_id` (any
  of the subject's ids), `anonymous_id` (the stitched ones) and `known_user_id` (the user ids);
- the landing files the subject's rows came from (their lines are the raw.events rows above), and whether each is
  still there;
- activation exports (`activation/*/*.jsonl`): the entries whose user_id is one of the ids;
- MLflow artifacts (`mlartifacts/**/training_features.parquet`): the rows whose user_id is one of the ids.

With PSEUDONYMISE_IDS on, the warehouse holds keyed hashes instead of clear ids: the given ids are mapped first and
both are searched (rows loaded before it was switched on hold clear ids); the file says which pseudonym stands for
which id. The warehouse is opened read-only, and only while its rows are
read (a pipeline run cannot write meanwhile). No table may give more than MAX_ROWS_PER_TABLE rows: beyond that the
export is refused. The file is written whole (temporary file, then rename) and readable by its owner only.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import duckdb

from privacy.identities import Subject, event_filter, parse_user_ids, register, resolve
from privacy.keys import PSEUDONYM, keyed_hash, privacy_key
from privacy.retention import Progress, progress_bar
from settings import PrivacySettings, Settings
from stores.files import fsync_dir
from stores.registry import TableStore, database_tables, table_stores
from stores.schema import connect

MAX_ROWS_PER_TABLE = 1_000_000
MAX_LINE_BYTES = 4 << 20  # an activation export line longer than this is skipped
# characters that may belong to an id: an id found in raw text must not touch one of them on either side
_ID_CHARS = r"A-Za-z0-9_.@-"

Rows = list[dict[str, Any]]
Tick = Callable[[str], None]


@dataclass
class AccessReport:
    """What one export found, and where it wrote it."""

    out: Path
    user_ids: list[str]
    subject: Subject
    counts: dict[str, int] = field(default_factory=dict)  # store -> rows or entries
    not_found: list[str] = field(default_factory=list)  # personal tables the warehouse does not have

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        lines = [
            f"Wrote everything held about {', '.join(self.user_ids)} to {self.out} ({self.total} rows and entries; "
            f"{len(self.subject.anonymous_ids)} stitched anonymous ids):"
        ]
        lines += [f"  {store}: {count}" for store, count in sorted(self.counts.items()) if count]
        empty = sorted(store for store, count in self.counts.items() if not count)
        if empty:
            lines.append(f"  nothing in: {', '.join(empty)}")
        if self.not_found:
            lines.append(f"  not in the warehouse (not built yet): {', '.join(self.not_found)}")
        return "\n".join(lines)


def held_ids(settings: PrivacySettings, user_ids: list[str]) -> dict[str, str]:
    """{given id: the id the stores hold}: the keyed hash with PSEUDONYMISE_IDS on, else the id itself."""
    if not settings.pseudonymise_ids:
        return {value: value for value in user_ids}
    key = privacy_key(settings)
    return {value: keyed_hash(key, PSEUDONYM, value) for value in user_ids}


def export_user(
    settings: Settings, user_ids: list[str], out: Path | None = None, progress: Progress | None = None
) -> AccessReport:
    """Write everything held about `user_ids` to `out` (default: ./user-export-<time>.json); raises ValueError when
    a table gives too many rows or the warehouse is being written."""
    ids = parse_user_ids(user_ids)
    mapping = held_ids(settings.privacy, ids)
    out = out or Path.cwd() / f"user-export-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    stores = _personal_stores()
    total = len(stores) + 3
    tick = _ticker(progress, total)
    searched = sorted({*ids, *mapping.values()})  # rows loaded before pseudonymisation was on hold clear ids
    subject, tables, not_found = _warehouse_rows(settings.ingest.warehouse_path, searched, stores, tick)
    files = _source_files(tables, settings.ingest.landing_dir)
    activation = _activation_entries(settings.activation.export_dir, settings.data_dir, subject.all_ids)
    tick("activation exports")
    features = _training_features(settings.ml.artifact_root, settings.data_dir, subject.all_ids)
    tick("training features")
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "requested_user_ids": ids,
        "pseudonyms": mapping if settings.privacy.pseudonymise_ids else None,
        "subject": {"user_ids": sorted(subject.user_ids), "anonymous_ids": sorted(subject.anonymous_ids)},
        "warehouse": tables,
        "landing_files": files,
        "activation_exports": activation,
        "training_features": features,
    }
    write_private_json(out, document)
    tick("written")
    report = AccessReport(out, ids, subject, not_found=not_found)
    report.counts = {name: len(rows) for name, rows in tables.items()}
    report.counts["landing files"] = len(files)
    report.counts["activation exports"] = sum(len(entries) for entries in activation.values())
    report.counts["training features"] = sum(len(rows) for rows in features.values())
    return report


def export_with_progress(settings: Settings, user_ids: list[str], out: Path | None = None) -> AccessReport:
    """`export_user` with a progress bar, for `make export-user`."""
    with progress_bar("export-user") as progress:
        return export_user(settings, user_ids, out, progress=progress)


def _ticker(progress: Progress | None, total: int) -> Tick:
    done = iter(range(1, total + 1))

    def tick(stage: str) -> None:
        if progress:
            progress(stage, next(done, total), total)

    return tick


def _personal_stores() -> list[TableStore]:
    try:
        stores = table_stores()
    except FileNotFoundError as error:
        raise ValueError(
            f"{error.filename}: dbt's manifest is missing (run `dbt parse`), so dbt's tables are not known"
        ) from error
    return [s for s in stores if s.database == "warehouse" and s.holds_personal_data and s.kind == "table"]


# -- the warehouse --------------------------------------------------------------------------------------------


def _warehouse_rows(
    path: Path, user_ids: list[str], stores: list[TableStore], tick: Tick
) -> tuple[Subject, dict[str, Rows], list[str]]:
    """The subject and, per personal table, its rows; the tables the warehouse lacks."""
    if not path.exists():
        for store in stores:
            tick(store.table)
        return Subject(frozenset(user_ids), frozenset()), {}, [s.table for s in stores]
    try:
        con = connect(str(path), read_only=True)
    except duckdb.IOException as error:
        raise ValueError(f"cannot open {path} read-only (a pipeline run writing it?); try again: {error}") from error
    try:
        present = set(database_tables(con))
        subject = resolve(con, user_ids) if "raw.events" in present else Subject(frozenset(user_ids), frozenset())
        _register_ids(con, subject)
        tables: dict[str, Rows] = {}
        for store in stores:
            if store.table in present:
                tables[store.table] = _table_rows(con, store)
            tick(store.table)
    finally:
        con.close()
    return subject, tables, sorted(s.table for s in stores if s.table not in present)


def _register_ids(con: duckdb.DuckDBPyConnection, subject: Subject) -> None:
    """The temp tables the predicates read: event_filter's two, all ids, and a whole-token pattern per id."""
    register(con, subject)
    con.execute("create or replace temp table access_ids (id varchar, pattern varchar)")
    rows = [[value, f"(^|[^{_ID_CHARS}]){_escaped(value)}($|[^{_ID_CHARS}])"] for value in sorted(subject.all_ids)]
    if rows:
        con.executemany("insert into access_ids values (?, ?)", rows)


def _escaped(value: str) -> str:
    """`value` as a literal in an RE2 pattern (DuckDB's regexps): ASCII punctuation backslashed."""
    return "".join("\\" + char if char in string.punctuation else char for char in value)


def _predicate(con: duckdb.DuckDBPyConnection, store: TableStore) -> str | None:
    """SQL selecting the subject's rows of the table, or None when it has no column to match on."""
    if store.table == "raw.events":
        return event_filter()
    if store.table == "raw.events_rejected":
        return "exists (select 1 from access_ids as a where regexp_matches(raw_line, a.pattern))"
    schema, table = store.table.split(".")
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if {"user_id", "anonymous_id"} <= columns:
        return event_filter()
    parts = []
    if "user_id" in columns:
        parts.append("user_id in (select id from access_ids)")
    if "anonymous_id" in columns:
        parts.append("anonymous_id in (select id from erase_anonymous_ids)")
    if "known_user_id" in columns:
        parts.append("known_user_id in (select id from erase_user_ids)")
    return " or ".join(parts) or None


def _table_rows(con: duckdb.DuckDBPyConnection, store: TableStore) -> Rows:
    predicate = _predicate(con, store)
    if predicate is None:
        return []
    schema, table = store.table.split(".")
    source = f'"{schema}"."{table}" where {predicate}'
    return _bounded_rows(con, source, store.table)


def _bounded_rows(con: duckdb.DuckDBPyConnection, source: str, name: str, params: list | None = None) -> Rows:
    """`select * from <source>` as dicts (JSON columns decoded); ValueError beyond MAX_ROWS_PER_TABLE rows."""
    count = con.execute(f"select count(*) from {source}", params or []).fetchone()[0]
    if count > MAX_ROWS_PER_TABLE:
        raise ValueError(
            f"{name}: {count} rows belong to these users, beyond the export's bound of {MAX_ROWS_PER_TABLE} a "
            "table; export fewer users at a time"
        )
    cursor = con.execute(f"select * from {source}", params or [])
    names = [column[0] for column in cursor.description]
    is_json = [str(column[1]) == "JSON" for column in cursor.description]
    return [
        {
            name: _decoded(value) if json_column else value
            for name, value, json_column in zip(names, row, is_json, strict=True)
        }
        for row in cursor.fetchall()
    ]


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _source_files(tables: dict[str, Rows], landing_dir: Path) -> list[dict[str, Any]]:
    """The landing files the subject's raw rows came from, and whether each is still in the landing folder."""
    names = {row["source_file"] for table in ("raw.events", "raw.events_rejected") for row in tables.get(table, [])}
    return [{"file": name, "present": (landing_dir / name).is_file()} for name in sorted(names)]


# -- files ----------------------------------------------------------------------------------------------------


def _files(root: Path, name_matches: Callable[[str], bool]) -> Iterator[Path]:
    """Regular files under `root` whose name matches, walked without following symlinks, dot-names skipped."""
    if not root.is_dir() or root.is_symlink():
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if not name.startswith(".") and name_matches(name) and path.is_file() and not path.is_symlink():
                yield path


def _activation_entries(export_dir: Path, data_dir: Path, ids: frozenset[str]) -> dict[str, Rows]:
    """{file: entries with one of the ids as user_id} over activation/<audience>/*.jsonl."""
    found: dict[str, Rows] = {}
    for path in _files(export_dir, lambda name: name.endswith(".jsonl")):
        if path.parent.parent != export_dir:
            continue
        entries = list(_entries_of(path, ids))
        if entries:
            found[_relative(path, data_dir)] = entries
    return found


def _entries_of(path: Path, ids: frozenset[str]) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if len(line) > MAX_LINE_BYTES:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("user_id") in ids:
                yield entry


def _training_features(artifact_root: Path, data_dir: Path, ids: frozenset[str]) -> dict[str, Rows]:
    """{file: rows with one of the ids as user_id} over mlartifacts/**/training_features.parquet."""
    found: dict[str, Rows] = {}
    paths = list(_files(artifact_root, lambda name: name == "training_features.parquet"))
    if not paths or not ids:
        return found
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create temp table access_user_ids (id varchar)")
        con.executemany("insert into access_user_ids values (?)", [[value] for value in sorted(ids)])
        for path in paths:
            columns = {row[0] for row in con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()}
            if "user_id" not in columns:
                continue
            source = "read_parquet($1) where user_id::varchar in (select id from access_user_ids)"
            rows = _bounded_rows(con, source, _relative(path, data_dir), [str(path)])
            if rows:
                found[_relative(path, data_dir)] = rows
    return found


def _relative(path: Path, data_dir: Path) -> str:
    try:
        return path.relative_to(data_dir).as_posix()
    except ValueError:
        return str(path)


# -- the file -------------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # Decimal, UUID, timedelta, ...


def write_private_json(out: Path, document: dict[str, Any]) -> None:
    """`document` as JSON at `out`, whole or not at all (temporary file then rename), mode 0600."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, default=_json_default, ensure_ascii=False, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # O_CREAT's mode only applies to a new file
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
