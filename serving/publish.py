"""Publish marts.* and ml.* from the pipeline's warehouse as one versioned, durable serving copy.

The serving copy is a DuckDB file with marts.*, ml.*, schema ops (the load manifest, the batch gate's verdicts and
rejected rows per file and reason, for the dashboard's data-health page; not exported) and meta.publish (when, from
what, and the as_of the marts were computed at), plus Parquet exports of marts.* and ml.*.

Layout under $DATA_DIR (folder `published/`, owner: serving; holds personal data: yes, the marts hold user ids):

    published/<version>/serving.duckdb           one publish's DuckDB copy
    published/<version>/exports/<schema>/<t>.parquet   and its Parquet exports
    published/<version>/publish.json             its manifest: published_at, freshness, tables and row counts
    published/current -> <version>               the version served (a relative symlink)
    serving.duckdb -> published/current/serving.duckdb   the stable names readers open
    exports -> published/current/exports

A publish writes a new version under a hidden temporary name (published/.<version>.tmp), fsyncs every file and
folder in it, renames it to its version name and fsyncs published/; then it makes a symlink to that version under
a temporary name, renames it over `current` (rename(2) replaces the name atomically) and fsyncs published/ again.
That rename is the one commit point: before it readers get the previous publish's database and exports, after it
this one's, never a mix, and once publish() returns the switch survives a power cut. A failed publish removes its
temporary folder and leaves `current` as it was. The stable names are made once (atomically, by the same
symlink-and-rename); a regular serving.duckdb file and exports folder left by versions before this layout are
first hard-linked into a `<time>-legacy` version that `current` points at, so even that migration never serves
one publish's database beside another's exports.

Readers resolve the names when they open a file, so an analyst's open read-only connection keeps reading the
version it opened (Linux keeps an unlinked file's inode while it is open): a publish never blocks a reader and a
reader never sees half a refresh. After the switch, versions beyond the newest KEEP_VERSIONS (the current one
included) are removed, so a reader that resolved a path just before a publish still finds its files for one
more publish. Publishes are serialised by the warehouse's single writer (the Dagster writer pool).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from stores.files import fsync_dir

PUBLISHED_SCHEMAS = ("marts", "ml")
SAMPLE_LINE_CHARS = 500

# Schema `ops`: what the dashboard's data-health page needs from the pipeline's raw.* bookkeeping, which is not
# published as such (raw.events is large and only the pipeline reads it). Each entry: table, raw tables it reads,
# and the select that builds it.
OPS_TABLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("load_manifest", ("load_manifest",), "select * from raw.load_manifest"),
    ("batches", ("batches",), "select * from raw.batches"),
    (
        "rejects_by_file_reason",
        ("events_rejected",),
        "select source_file, reason, count(*) as rejected_rows, min(line_number) as first_line_number, "
        f"arg_min(left(raw_line, {SAMPLE_LINE_CHARS}), coalesce(line_number, 0)) as sample_line, "
        "max(rejected_at) as last_rejected_at "
        "from raw.events_rejected group by source_file, reason",
    ),
)

PUBLISHED_DIR = "published"
CURRENT = "current"
SERVING_FILE = "serving.duckdb"
EXPORTS_DIR = "exports"
MANIFEST = "publish.json"
KEEP_VERSIONS = 2  # the current version and the one before it


@dataclass(frozen=True)
class PublishResult:
    """What one publish wrote."""

    serving_path: Path
    exports_dir: Path
    tables: dict[str, int]  # schema.table -> rows
    published_at: datetime
    latest_event_at: datetime | None
    latest_load_at: datetime | None
    version_dir: Path | None = None  # published/<version>, what serving_path and exports_dir now resolve into

    @property
    def seconds_since_latest_load(self) -> float | None:
        """Lag from the newest landing file's load to this publish."""
        return None if self.latest_load_at is None else (self.published_at - self.latest_load_at).total_seconds()

    @property
    def seconds_since_latest_event(self) -> float | None:
        """Lag from the newest event's own timestamp to this publish."""
        return None if self.latest_event_at is None else (self.published_at - self.latest_event_at).total_seconds()


def publish(
    con: duckdb.DuckDBPyConnection, serving_path: Path, exports_dir: Path, keep: int = KEEP_VERSIONS
) -> PublishResult:
    """Write every table of the published schemas into a new version folder (DuckDB file, Parquet exports and
    manifest), make it durable, then switch `current` to it in one rename; serving_path and exports_dir become
    symlinks through `current` (made once). The published/ folder sits beside serving_path."""
    root = serving_path.parent / PUBLISHED_DIR
    _make_dir(serving_path.parent)
    _make_dir(root)
    _remove_litter(root)
    _migrate_legacy(root, serving_path, exports_dir)
    # the stable names first: before the first publish they dangle (no copy yet), then the switch of `current`
    # makes the database and the exports appear together
    _point(serving_path, os.path.relpath(root / CURRENT / SERVING_FILE, serving_path.parent))
    _point(exports_dir, os.path.relpath(root / CURRENT / EXPORTS_DIR, exports_dir.parent))
    tables = _tables(con)
    published_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    latest_event_at, latest_load_at = _freshness(con)
    as_of = _as_of(con) or latest_event_at
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    staging, final = root / f".{version}.tmp", root / version
    try:
        staging.mkdir()
        counts, exported = _write_copy(con, staging, tables, published_at, latest_event_at, latest_load_at, as_of)
        manifest = {
            "version": version,
            "published_at": published_at.isoformat(sep=" "),
            "latest_event_at": _iso(latest_event_at),
            "latest_load_at": _iso(latest_load_at),
            "as_of": _iso(as_of),
            "tables": counts,
            "exports": exported,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync_tree(staging)
        os.replace(staging, final)
        fsync_dir(root)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            _detach(con)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    try:
        _point(root / CURRENT, version)  # the commit point
    except BaseException:
        if _target(root / CURRENT) != version:  # not switched: the version is litter
            shutil.rmtree(final, ignore_errors=True)
        raise
    _remove_old_versions(root, keep)
    return PublishResult(serving_path, exports_dir, counts, published_at, latest_event_at, latest_load_at, final)


def current_version(serving_path: Path) -> Path | None:
    """The version folder the serving copy beside serving_path resolves into (None before the first publish)."""
    link = serving_path.parent / PUBLISHED_DIR / CURRENT
    return link.resolve() if link.is_dir() else None


def read_manifest(version_dir: Path) -> dict:
    """The publish.json of one version folder."""
    return json.loads((version_dir / MANIFEST).read_text())


def _write_copy(
    con: duckdb.DuckDBPyConnection,
    staging: Path,
    tables: list[tuple[str, str]],
    published_at: datetime,
    latest_event_at: datetime | None,
    latest_load_at: datetime | None,
    as_of: datetime | None,
) -> tuple[dict[str, int], dict[str, str]]:
    """The DuckDB copy and Parquet exports in the staging folder; returns rows per table and exported files."""
    exports = staging / EXPORTS_DIR
    exports.mkdir()
    con.execute("attach ? as serving_copy", [str(staging / SERVING_FILE)])
    counts: dict[str, int] = {}
    exported: dict[str, str] = {}
    for schema, table in tables:
        # catalog names from duckdb_tables() and duckdb_views(), quoted as identifiers: no data values in this SQL
        source = f'"{schema}"."{table}"'
        con.execute(f'create schema if not exists serving_copy."{schema}"')
        con.execute(f'create table serving_copy."{schema}"."{table}" as select * from {source}')
        (exports / schema).mkdir(exist_ok=True)
        target = exports / schema / f"{table}.parquet"
        con.execute(f"copy {source} to '{target}' (format parquet)")
        counts[f"{schema}.{table}"] = con.execute(f"select count(*) from {source}").fetchone()[0]
        exported[f"{schema}.{table}"] = target.relative_to(staging).as_posix()
    present = _raw_tables(con)
    for table, needs, select in OPS_TABLES:
        if not set(needs) <= present:
            continue
        con.execute("create schema if not exists serving_copy.ops")
        con.execute(f"create table serving_copy.ops.{table} as {select}")
        counts[f"ops.{table}"] = con.execute(f"select count(*) from serving_copy.ops.{table}").fetchone()[0]
    con.execute("create schema serving_copy.meta")
    con.execute(
        "create table serving_copy.meta.publish as select ?::timestamp as published_at, "
        "?::timestamp as latest_event_at, ?::timestamp as latest_load_at, ? as tables, ?::timestamp as as_of",
        [published_at, latest_event_at, latest_load_at, len(counts), as_of],
    )
    con.execute("detach serving_copy")  # checkpoints: the file is whole, with no write-ahead log beside it
    return counts, exported


# Tables, and the views over Spark's Parquet tables that stand for them with DBT_TARGET=spark (spark_warehouse.catalog)
_RELATIONS = (
    "(select database_name, schema_name, table_name from duckdb_tables() "
    "union all select database_name, schema_name, view_name from duckdb_views() where not internal)"
)


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        f"select schema_name, table_name from {_RELATIONS} "
        "where database_name = current_database() and schema_name in (select unnest(?)) order by 1, 2",
        [list(PUBLISHED_SCHEMAS)],
    ).fetchall()


def _raw_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() and schema_name = 'raw'"
        ).fetchall()
    }


def _as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The instant the marts were computed at (intermediate.int_as_of), when dbt has built it."""
    has_as_of = con.execute(
        f"select count(*) from {_RELATIONS} where database_name = current_database() "
        "and schema_name = 'intermediate' and table_name = 'int_as_of'"
    ).fetchone()[0]
    if not has_as_of:
        return None
    row = con.execute("select max(as_of) from intermediate.int_as_of").fetchone()
    return row[0] if row else None


def _freshness(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    has_raw = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'events'"
    ).fetchone()[0]
    if not has_raw:
        return None, None
    return con.execute("select max(timestamp), max(loaded_at) from raw.events").fetchone()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(sep=" ")


def _detach(con: duckdb.DuckDBPyConnection) -> None:
    attached = con.execute("select database_name from duckdb_databases()").fetchall()
    if any(row[0] == "serving_copy" for row in attached):
        con.execute("detach serving_copy")


def _fsync_tree(root: Path) -> None:
    """fsync every file, then every folder from the deepest up, of a freshly written tree."""
    folders = []
    for folder, _, files in os.walk(root):
        folders.append(Path(folder))
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for folder in reversed(folders):
        fsync_dir(folder)


def _make_dir(path: Path) -> None:
    """Create a folder (and its parents) durably, if it is not there yet."""
    if path.is_dir():
        return
    _make_dir(path.parent)
    path.mkdir(exist_ok=True)
    fsync_dir(path.parent)


def _point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target` in one rename (a temporary link renamed over it), durably.

    A regular file at `link` is replaced the same way; a real folder (the exports of versions before this layout,
    already hard-linked into a legacy version) is moved aside first, as rename cannot put a link over a folder.
    """
    if _target(link) == target:
        return
    temporary = link.with_name(f".{link.name}.{uuid.uuid4().hex[:12]}.tmp")
    retired: Path | None = None
    try:
        os.symlink(target, temporary)
        if link.is_dir() and not link.is_symlink():
            retired = link.with_name(f".{link.name}.{uuid.uuid4().hex[:12]}.retired.tmp")
            os.replace(link, retired)
        os.replace(temporary, link)
        fsync_dir(link.parent)
    finally:
        temporary.unlink(missing_ok=True)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def _migrate_legacy(root: Path, serving_path: Path, exports_dir: Path) -> None:
    """A regular serving.duckdb and exports folder (versions before this layout) become a `<time>-legacy` version
    by hard links, with `current` pointing at it, before the names are turned into symlinks."""
    legacy_db = serving_path.is_file() and not serving_path.is_symlink()
    legacy_exports = exports_dir.is_dir() and not exports_dir.is_symlink()
    if not (legacy_db or legacy_exports) or (root / CURRENT).is_symlink():
        return
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-legacy"
    staging = root / f".{version}.tmp"
    try:
        staging.mkdir()
        if legacy_db:
            os.link(serving_path, staging / SERVING_FILE)
        if legacy_exports:
            shutil.copytree(exports_dir, staging / EXPORTS_DIR, copy_function=os.link)
        else:
            (staging / EXPORTS_DIR).mkdir()
        _fsync_tree(staging)
        os.replace(staging, root / version)
        fsync_dir(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _point(root / CURRENT, version)
    if legacy_db:
        _point(serving_path, os.path.relpath(root / CURRENT / SERVING_FILE, serving_path.parent))
    if legacy_exports:
        _point(exports_dir, os.path.relpath(root / CURRENT / EXPORTS_DIR, exports_dir.parent))


def _target(link: Path) -> str | None:
    """Where a symlink points (None when it is not a symlink)."""
    try:
        return os.readlink(link)
    except OSError:
        return None


def _versions(root: Path) -> list[Path]:
    """Finished version folders, oldest first (names start with the UTC time of the publish)."""
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.name != CURRENT and p.is_dir())


def _remove_old_versions(root: Path, keep: int) -> None:
    """Remove all but the newest `keep` versions (never the current one)."""
    current = _target(root / CURRENT)
    others = [v for v in _versions(root) if v.name != current]
    for old in others[: max(0, len(others) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(root)


def _remove_litter(root: Path) -> None:
    """Temporary folders and links a publish killed mid-way left behind (publishes never run side by side)."""
    for path in root.iterdir():
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    for path in root.parent.iterdir():
        legacy = path.name == f".{EXPORTS_DIR}.retired"  # what the two-rename swap of older versions left
        if legacy or (path.name.startswith((f".{SERVING_FILE}.", f".{EXPORTS_DIR}.")) and path.name.endswith(".tmp")):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
