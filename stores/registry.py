"""Every store the product keeps: the files and folders under DATA_DIR, the tables of its two DuckDB files and the
keys of the live state in Redis.

A `PathStore` names a file or folder under DATA_DIR by a pattern relative to it (segments separated by `/`; `*`
matches within one segment, `**` any number of segments; a trailing `/` covers the folder and everything under it).
A `TableStore` names a table of warehouse.duckdb or serving.duckdb, a `KeyStore` keys in Redis by pattern. Tables dbt
builds are not listed by hand: they are read from dbt's manifest (`dbt_table_stores`), and the serving copy's tables
are derived from what serving.publish copies (`serving_table_stores`).

Personal data: user ids, anonymous ids, traits, IP addresses (context) and raw event text count as personal. A dbt
model holds personal data when its schema yml documents a column named in `USER_COLUMNS`; `tests/test_stores.py`
and the end-to-end test check that rule against the columns the real tables have.

The erasure note says how an erasure (`make erase`, privacy.erase: forgetting a user on request) reaches the store;
privacy.erase walks `table_stores()` for the tables, and docs/privacy.md tells the whole procedure.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from serving.publish import KEEP_VERSIONS, PUBLISHED_SCHEMAS

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "dbt_project" / "target" / "manifest.json"
DATABASES = ("warehouse", "serving")
# a column of one of these names identifies a user (dbt rule; hand-listed tables name their own columns)
USER_COLUMNS = ("user_id", "anonymous_id", "known_user_id", "previous_user_id")
# dbt models configured by this macro are also built as `<alias>_as_of` when var as_of is pinned
AS_OF_MACRO = "per_user_incremental_config"

_REBUILT = (
    "the user's rows deleted by user_id/known_user_id (incremental models keep rows per user, so that is their "
    "recomputation); tables are then rebuilt by dbt from what is left"
)
_PUBLISHED = (
    f"rebuilt whole by the next publish from the warehouse; the newest {KEEP_VERSIONS} versions are kept, so old "
    f"rows are gone only after {KEEP_VERSIONS} publishes (or older versions removed), and a reader with a file open "
    "keeps its data until it closes"
)


@dataclass(frozen=True)
class PathStore:
    """A file or folder under DATA_DIR."""

    pattern: str  # relative to DATA_DIR; trailing "/": the folder and everything under it
    kind: str  # file, folder or symlink
    what: str
    owner: str  # the package that writes it
    holds_personal_data: bool
    erasure: str

    @property
    def is_tree(self) -> bool:
        """True when the store covers a whole folder."""
        return self.pattern.endswith("/")

    def matches(self, relative: str) -> bool:
        """True when the path (relative to DATA_DIR, `/`-separated) is this store or lies inside it."""
        parts = relative.strip("/").split("/")
        segments = self.pattern.strip("/").split("/")
        if self.is_tree:
            return len(parts) >= len(segments) and _match(segments, parts[: len(segments)])
        return _match(segments, parts)

    def leads_to(self, relative: str) -> bool:
        """True when the folder at `relative` is on the way to this store (an ancestor of a path it covers)."""
        parts = relative.strip("/").split("/")
        segments = self.pattern.strip("/").split("/")
        for depth in range(len(parts)):
            if depth >= len(segments):
                return False
            if segments[depth] == "**":
                return True
            if not fnmatch.fnmatchcase(parts[depth], segments[depth]):
                return False
        return len(parts) < len(segments)


@dataclass(frozen=True)
class TableStore:
    """A table (or view) in warehouse.duckdb or serving.duckdb."""

    table: str  # schema.table
    database: str  # warehouse or serving
    what: str
    owner: str  # the package that writes it ("dbt" for models, seeds and snapshots)
    holds_personal_data: bool
    user_columns: tuple[str, ...]  # the columns that identify a user (empty when none)
    erasure: str
    kind: str = "table"  # table or view


def _match(segments: list[str], parts: list[str]) -> bool:
    if not segments:
        return not parts
    if segments[0] == "**":
        return any(_match(segments[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], segments[0]) and _match(segments[1:], parts[1:])


# -- files and folders under DATA_DIR --------------------------------------------------------------------------

_LANDING_ERASURE = (
    "files rewritten without the user's lines (atomically); the file's raw.load_manifest row moves them to "
    "rows_erased and takes the new size, time and checksum, so it is not loaded again; later lines of a suppressed "
    "user are dropped and cut out of the file by ingestion"
)

PATH_STORES: tuple[PathStore, ...] = (
    PathStore(
        "landing/", "folder",
        "the input folder: event files as apps, exports, demo-events and bench deliver them; never emptied",
        "ingestion", True, _LANDING_ERASURE,
    ),
    PathStore(
        "landing/collector/", "folder",
        "the collector's rotated spool files (`events-<time>-p<pid>-<n>.jsonl`), and `.collector-*.part` while one is "
        "copied in from a spool on another file system",
        "collector", True, _LANDING_ERASURE,
    ),
    PathStore(
        "spool/collector/*/*.jsonl", "file",
        "a collector process's open spool file: acknowledged events not rotated into landing/collector/ yet",
        "collector", True,
        "the collector drops a suppressed user's events before spooling; an erasure lands dead processes' files and "
        "waits for live ones to rotate, then erases them in landing/collector/",
    ),
    PathStore(
        "spool/collector/*/.lock", "file", "the pid lock of the process that owns the spool subfolder",
        "collector", False, "not personal",
    ),
    PathStore(
        "redis/", "folder",
        "the files of the redis-server `make dev` starts for the live path (its append-only log of the live state)",
        "live", True,
        "the user's keys deleted (live.erase), then the append-only log rewritten (BGREWRITEAOF) so that no old "
        "command keeps them",
    ),
    PathStore(
        "warehouse.duckdb", "file",
        "the pipeline's DuckDB database (raw.*, staging.*, intermediate.*, marts.*, ml.*, activation.*, meta.*)",
        "ingestion", True,
        "rows deleted per table store of database warehouse, then the file copied into a fresh one "
        "(.warehouse.duckdb.rewrite-*.tmp) renamed over it, so no freed block keeps deleted rows",
    ),
    PathStore(
        "warehouse.duckdb.wal", "file", "DuckDB's write-ahead log of the warehouse (writes since the last checkpoint)",
        "ingestion", True, "emptied by the CHECKPOINT after the deletes",
    ),
    PathStore(
        "warehouse.duckdb.tmp/", "folder",
        "DuckDB's spill folder for the warehouse (temp_directory default), while a query exceeds the memory limit",
        "ingestion", True, "removed by DuckDB when the query ends; nothing left after a clean close",
    ),
    PathStore(
        "serving.duckdb", "symlink", "the stable name readers open: a link to published/current/serving.duckdb",
        "serving", False, "a link: erase the version folders it resolves into",
    ),
    PathStore(
        "exports", "symlink", "the stable name of the Parquet exports: a link to published/current/exports",
        "serving", False, "a link: erase the version folders it resolves into",
    ),
    PathStore(
        "published/current", "symlink", "the version served: a relative link to `published/<version>`",
        "serving", False, "a link: erase the version folders it resolves into",
    ),
    PathStore(
        "published/*/serving.duckdb", "file",
        "one publish's serving copy (marts.*, ml.*, ops.*, meta.publish); see the serving tables",
        "serving", True, _PUBLISHED,
    ),
    PathStore(
        "published/*/exports/*/*.parquet", "file", "one publish's Parquet export of a marts.* or ml.* table",
        "serving", True, _PUBLISHED,
    ),
    PathStore(
        "published/*/publish.json", "file", "one publish's manifest: when, freshness, tables and row counts",
        "serving", False, "not personal",
    ),
    PathStore(
        "published/.*.tmp/", "folder",
        "a publish in progress, or left by one killed mid-way: a version folder or a `current` link being made",
        "serving", True, "removed by the next publish (litter)",
    ),
    PathStore(
        ".serving.duckdb.*.tmp", "symlink", "a stable-name link being swapped in by a publish (or left by a crash)",
        "serving", False, "removed by the next publish (litter)",
    ),
    PathStore(
        ".exports.*.tmp/", "folder",
        "a stable-name link being swapped in, or a pre-version exports folder being retired, by a publish",
        "serving", True, "removed by the next publish (litter)",
    ),
    PathStore(
        ".exports.retired/", "folder", "an exports folder retired by publishes older than the versioned layout",
        "serving", True, "removed by the next publish (litter)",
    ),
    PathStore(
        "spark/raw/", "folder",
        "DBT_TARGET=spark: raw.* as Parquet for Spark, exported from the ledger in warehouse.duckdb "
        "(spark_warehouse.raw_export; raw.events one file per loaded landing file)",
        "spark_warehouse", True,
        "exported again after the ledger's rows are deleted: a landing file's Parquet file is named by its row count, "
        "so each file that lost rows is written again and the old one removed",
    ),
    PathStore(
        "spark/warehouse/", "folder",
        "DBT_TARGET=spark: the tables dbt builds on Spark (Parquet, `<schema>.db/<table>/`), the same as "
        "warehouse.duckdb's staging.*, intermediate.* and marts.*",
        "dbt", True,
        "every table folder with an owner column rewritten without the user's rows (spark_warehouse.erase), then the "
        "table models rebuilt by dbt on Spark",
    ),
    PathStore(
        "spark/ml/", "folder",
        "DBT_TARGET=spark: ml.* as external Parquet tables (`<table>/`) for the models that read them",
        "ml", True, "rewritten without the user's rows (spark_warehouse.erase)",
    ),
    PathStore(
        "spark/metastore_db/", "folder",
        "DBT_TARGET=spark in session mode: the embedded Derby metastore naming Spark's tables, columns and folders",
        "dbt", False, "not personal (names and schemas only)",
    ),
    PathStore(
        "spark/derby.log", "file", "the Derby metastore's log", "dbt", False, "not personal",
    ),
    PathStore(
        "gx/", "folder",
        "Great Expectations project: suites, checkpoints, validation results and Data Docs; each result keeps up "
        "to 5 unexpected values per expectation (e.g. unparseable raw `properties` text, event names, message ids)",
        "expectations", True,
        "results and Data Docs pages naming the user deleted, the index rebuilt; each suite keeps its latest "
        "GX_KEEP_RESULTS (50)",
    ),
    PathStore(
        "mlflow.db", "file",
        "MLflow tracking and registry (SQLite): runs, parameters, metrics, tags, dataset digests, model versions",
        "ml", False, "not personal (aggregates and model metadata only)",
    ),
    PathStore(
        "mlflow.db-journal", "file", "SQLite's rollback journal of mlflow.db while MLflow writes",
        "ml", False, "not personal",
    ),
    PathStore(
        "mlartifacts/", "folder",
        "MLflow artifacts: per training run plots, tables, data/training_features.parquet (a sample of the "
        "training features with user_id) and the model with a 5-row input example (features, no ids)",
        "ml", True,
        "the user's rows removed from data/training_features.parquet of every run; the run and its model versions "
        "tagged privacy.trained_on_erased_data (models hold parameters, not rows; the next training leaves the user "
        "out)",
    ),
    PathStore(
        "dagster_home/", "folder",
        "Dagster instance: run and event history, schedules, sensor cursors, compute logs; check metadata keeps up "
        "to 5 unexpected values of each suite (as gx/)",
        "orchestration", True,
        "runs whose config or events name the user deleted whole with their compute logs (no per-event edit), "
        "the SQLite files vacuumed",
    ),
    PathStore(
        "demo_truth/", "folder",
        "demo-events' ground truth (users.parquet with generated user ids and personas, truth.json): tests only",
        "demo_events", True, "rewritten by demo-events, or deleted (generated users only)",
    ),
    PathStore(
        "activation/*/*.jsonl", "file",
        "one export of new audience entries (user_id, entered_at, ...) of the audience the folder is named after",
        "activation", True,
        "files rewritten without the user's entries; entries already POSTed are the webhook receiver's to erase",
    ),
    PathStore(
        "activation/kpi_alerts/*.jsonl", "file", "one export of new KPI alerts (day, KPI, value, band)",
        "activation", False, "not personal",
    ),
    PathStore(
        "activation/*/.*.jsonl.tmp", "file", "an export being written (renamed into place when whole)",
        "activation", True, "renamed into an export at once; after a crash, deleted",
    ),
    PathStore(
        ".warehouse.duckdb.rewrite-*.tmp", "file",
        "the warehouse being copied into a fresh file by an erasure (renamed over warehouse.duckdb when whole)",
        "privacy", True, "renamed into place at once; after a crash, delete it",
    ),
    PathStore(
        "privacy/key", "file", "the random HMAC key of the suppression list and ledger, when PRIVACY_KEY is unset "
        "(owner-only permissions)", "privacy", False, "not personal (a secret: keep it, or hashes stop matching)",
    ),
    PathStore(
        "privacy/suppressed_ids.txt", "file",
        "the suppression list: keyed hashes (HMAC-SHA256) of every erased user and anonymous id, no clear id",
        "privacy", False, "kept for ever: it is what keeps an erased user out",
    ),
    PathStore(
        "privacy/erasure_ledger.jsonl", "file",
        "the erasure ledger: per request, when, the hashed ids and what each store lost; no clear id",
        "privacy", False, "kept for ever: the auditor's record",
    ),
    PathStore(
        "privacy/requests/", "folder",
        "erasure requests waiting for the erase_users sensor (one file of clear user ids each)",
        "privacy", True, "each request file is deleted when its erasure has finished",
    ),
    PathStore(
        "privacy/.*.tmp", "file", "a suppression list or key being written (renamed into place)", "privacy", False,
        "not personal",
    ),
    PathStore(
        "time.txt", "file", "bench.run's peak-memory report of the last measured command (benchmark DATA_DIR only)",
        "bench", False, "not personal",
    ),
)  # fmt: skip


# -- tables dbt does not build ---------------------------------------------------------------------------------
# (their DDL: stores/schema.py; tests/test_stores.py checks that both name the same warehouse tables)

_ROWS_BY_USER = "rows deleted by user_id"
HAND_TABLES: tuple[TableStore, ...] = (
    TableStore(
        "raw.events", "warehouse", "every loaded event (message, ids, properties, traits, context)", "ingestion",
        True, ("user_id", "anonymous_id"),
        "rows deleted by user_id and by every anonymous_id the user was stitched to; traits and context go with them",
    ),
    TableStore(
        "raw.events_rejected", "warehouse", "rejected rows with their reason and the raw line (cut)", "ingestion",
        True, ("raw_line",), "rows deleted whose raw_line contains the user's ids (text search: no id column)",
    ),
    TableStore(
        "raw.load_manifest", "warehouse",
        "one row per landing file and run: counts, checksum, status (ingestion), and the batch and gate verdict "
        "(expectations.gate sets batch_id and gate_status)",
        "ingestion", False, (), "not personal (update checksum, size and mtime when a landing file is rewritten)",
    ),
    TableStore(
        "raw.batches", "warehouse", "one row per ingestion run with the batch gate's verdict", "expectations", False,
        (), "not personal",
    ),
    TableStore(
        "ml.user_clusters", "warehouse", "behavioural cluster of every user (created empty by dbt's on-run-start)",
        "ml", True, ("user_id",), "rows deleted by user_id (replaced whole at the next scoring)",
    ),
    TableStore(
        "ml.churn_scores", "warehouse", "churn probability and risk tier of recently active users (created empty by "
        "dbt's on-run-start)", "ml", True, ("user_id",), "rows deleted by user_id (replaced whole at the next scoring)",
    ),
    TableStore(
        "ml.model_metrics", "warehouse", "holdout metrics of each model version", "ml", False, (), "not personal",
    ),
    TableStore(
        "ml.recommendations", "warehouse", "each user's recommended products from the champion recommendation model",
        "ml", True, ("user_id",), "rows deleted by user_id (replaced whole at the next scoring)",
    ),
    TableStore(
        "ml.popular_products", "warehouse", "the most touched products of each user segment (cold-start "
        "recommendations)", "ml", False, (), "not personal (counts of users per product)",
    ),
    TableStore(
        "ml.experiment_factorial_effects", "warehouse", "factorial experiments' effects (statsmodels logit)",
        "orchestration", False, (), "not personal",
    ),
    TableStore(
        "activation.delivery_log", "warehouse", "one row per delivered audience entry or alert: file, status, answer",
        "activation", True, ("user_id", "delivery_key"),
        "rows deleted by user_id (delivery_key is audience|user_id|entered_at); the entry could then be exported again "
        "while it stays in its audience",
    ),
    TableStore(
        "activation.delivery_attempts", "warehouse", "one row per webhook POST: batch, items, status, response",
        "activation", False, (), "not personal (batch_id is a hash of delivery keys)",
    ),
    TableStore(
        "meta.suite_watermarks", "warehouse", "per expectation suite, the newest staged_at that passed",
        "expectations", False, (), "not personal",
    ),
    TableStore(
        "ops.load_manifest", "serving", "copy of raw.load_manifest for the dashboard", "serving", False, (),
        "not personal",
    ),
    TableStore(
        "ops.batches", "serving", "copy of raw.batches for the dashboard", "serving", False, (), "not personal",
    ),
    TableStore(
        "ops.rejects_by_file_reason", "serving",
        "rejected rows per file and reason with a sample line (first 500 characters of a raw_line)", "serving", True,
        ("sample_line",), "rebuilt from raw.events_rejected by the next publish",
    ),
    TableStore(
        "meta.publish", "serving", "when this copy was published, from what, and its as_of", "serving", False, (),
        "not personal",
    ),
)  # fmt: skip


def dbt_table_stores(manifest_path: Path = MANIFEST) -> list[TableStore]:
    """One TableStore (database warehouse, owner dbt) per model, seed and snapshot in dbt's manifest; personal when
    its schema yml documents a column in USER_COLUMNS. Tables built by `per_user_incremental_config` also get their
    `<alias>_as_of` twin (built instead when var as_of is pinned)."""
    manifest = json.loads(Path(manifest_path).read_text())
    stores = []
    for node in manifest["nodes"].values():
        if node["resource_type"] not in ("model", "seed", "snapshot"):
            continue
        columns = tuple(name for name in node.get("columns", {}) if name in USER_COLUMNS)
        kind = "view" if node["config"].get("materialized") == "view" else "table"
        what = " ".join((node.get("description") or f"dbt {node['resource_type']} {node['name']}").split())
        if len(what) > 160:
            what = what[:157].rstrip() + "..."
        erasure = _REBUILT if columns else "not personal"
        if kind == "view":
            erasure = "a view: holds no rows" + ("; erase its sources" if columns else "")
        elif node["resource_type"] == "seed":
            erasure = "not personal (loaded from dbt_project/seeds/)" if not columns else "edit the seed file"
        names = [node["alias"]]
        if AS_OF_MACRO in (node.get("raw_code") or "") and kind == "table":  # (a view on this engine has no twin)
            names.append(f"{node['alias']}_as_of")
        for name in names:
            stores.append(
                TableStore(f"{node['schema']}.{name}", "warehouse", what, "dbt", bool(columns), columns, erasure, kind)
            )
    return sorted(stores, key=lambda s: s.table)


def serving_table_stores(warehouse_tables: Iterable[TableStore]) -> list[TableStore]:
    """The serving copy's marts.* and ml.* tables: serving.publish copies every table (not view) of those schemas."""
    stores = []
    for store in warehouse_tables:
        if store.database != "warehouse" or store.kind != "table":
            continue
        if store.table.split(".")[0] not in PUBLISHED_SCHEMAS:
            continue
        erasure = "rebuilt from the warehouse by the next publish"
        erasure += " (erase the warehouse rows first)" if store.holds_personal_data else " (not personal)"
        what = f"published copy of the warehouse's {store.table}"
        stores.append(
            TableStore(store.table, "serving", what, "serving", store.holds_personal_data, store.user_columns, erasure)
        )
    return stores


@dataclass(frozen=True)
class KeyStore:
    """Keys of the live state in Redis (live/), by pattern: `<prefix>` is LIVE_KEY_PREFIX, `*` any id."""

    pattern: str
    kind: str  # the Redis type: hash, zset, set, string
    what: str
    owner: str
    holds_personal_data: bool
    erasure: str

    def matches(self, key: str, prefix: str) -> bool:
        """True when `key` (of the given prefix) is one of this store's keys."""
        return fnmatch.fnmatchcase(key, self.pattern.replace("<prefix>", prefix))


_LIVE_ERASURE = "deleted by privacy.erase (live.erase) for the user and its linked anonymous ids"
KEY_STORES: tuple[KeyStore, ...] = (
    KeyStore("<prefix>:s:*", "hash", "a user's or anonymous id's last seen, last event, last product viewed, last "
             "order (times and message ids)", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:e:*", "zset", "an id's event message ids by time: the last day and a session gap (windows, "
             "sessions)", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:c:*", "hash", "an id's cart: each product's latest add (time, message id, quantity, price)",
             "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:r:*", "hash", "an id's removed products (latest removal time)", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:ids:*", "set", "the anonymous ids events named together with a user id", "live", True,
             _LIVE_ERASURE),
    KeyStore("<prefix>:link:*", "string", "the user id an anonymous id was named with", "live", True,
             _LIVE_ERASURE),
    KeyStore("<prefix>:dirty", "set", "ids with events applied since their segments were evaluated", "live", True,
             _LIVE_ERASURE),
    KeyStore("<prefix>:active", "zset", "id -> its newest event time", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:carts_due", "zset", "id -> when its cart counts as abandoned", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:m:*", "hash", "a live segment's members -> when they entered", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:mi:*", "zset", "a live segment's members in id order (paging)", "live", True, _LIVE_ERASURE),
    KeyStore("<prefix>:until", "zset", "segment and user -> when the membership stops holding", "live", True,
             _LIVE_ERASURE),
    KeyStore("<prefix>:transitions", "stream", "segment entries and exits, abandoned carts (the triggers' outbox)",
             "live", True, _LIVE_ERASURE + " (its entries naming them)"),
    KeyStore("<prefix>:delivered", "zset", "delivery keys of posted triggers (they name the user) -> when", "live",
             True, _LIVE_ERASURE + " (the keys naming them)"),
    KeyStore("<prefix>:t:*", "hash", "a user's batch traits from the serving copy (RFM segment, lifecycle stage, "
             "cluster, churn risk tier, experiment variants)", "live", True,
             _LIVE_ERASURE + "; loaded again only from a serving copy published after the erasure"),
    KeyStore("<prefix>:rec:*", "string", "a user's recommended products from the serving copy (ml.recommendations)",
             "live", True, _LIVE_ERASURE + "; loaded again only from a serving copy published after the erasure"),
    KeyStore("<prefix>:traits_version", "string", "the serving copy the traits come from", "live", False,
             "not personal"),
    KeyStore("<prefix>:popular", "hash", "each segment's most popular products (ml.popular_products): what a user "
             "without recommendations of its own gets", "live", False, "not personal (counts over segments)"),
    KeyStore("<prefix>:offsets", "hash", "spool file name -> bytes of it applied", "live", False, "not personal"),
    KeyStore("<prefix>:applied", "string", "events applied since the state was empty", "live", False,
             "not personal"),
)  # fmt: skip


def unregistered_keys(keys: Iterable[str], prefix: str, stores: Iterable[KeyStore] = KEY_STORES) -> list[str]:
    """The keys of `keys` (names in Redis) that no key store covers."""
    stores = list(stores)
    return [key for key in keys if not any(store.matches(key, prefix) for store in stores)]


def table_stores(manifest_path: Path = MANIFEST) -> list[TableStore]:
    """Every table store: hand-listed, dbt-built and their serving copies."""
    warehouse = [*[t for t in HAND_TABLES if t.database == "warehouse"], *dbt_table_stores(manifest_path)]
    stores = [*warehouse, *serving_table_stores(warehouse), *[t for t in HAND_TABLES if t.database == "serving"]]
    return sorted(stores, key=lambda s: (DATABASES.index(s.database), s.table))


def all_stores(manifest_path: Path = MANIFEST) -> list[PathStore | TableStore]:
    """Every path store, then every table store."""
    return [*PATH_STORES, *table_stores(manifest_path)]


def store_for_path(relative: str, stores: Iterable[PathStore] = PATH_STORES) -> PathStore | None:
    """The most specific path store covering `relative` (a path under DATA_DIR), or None."""
    matching = [store for store in stores if store.matches(relative)]
    # more segments first, then fewer wildcards (activation/kpi_alerts/*.jsonl beats activation/*/*.jsonl)
    return max(matching, key=lambda s: (s.pattern.strip("/").count("/"), -s.pattern.count("*")), default=None)


def unregistered_paths(data_dir: Path, stores: Iterable[PathStore] = PATH_STORES) -> list[str]:
    """Every file, folder and symlink under data_dir (walked without following symlinks) that no path store
    covers; a folder counts as covered when a store lies inside it."""
    stores = list(stores)
    found: list[str] = []

    def walk(folder: Path) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            relative = Path(entry.path).relative_to(data_dir).as_posix()
            is_dir = entry.is_dir(follow_symlinks=False)
            if any(store.matches(relative) for store in stores):
                continue  # a tree store covers what is under it; a file store what it names
            if is_dir and any(store.leads_to(relative) for store in stores):
                walk(Path(entry.path))
                continue
            found.append(relative + ("/" if is_dir else ""))

    if data_dir.is_dir():
        walk(data_dir)
    return found


def database_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """schema.table of every table and view of the connection's current database (views of DuckDB's own
    catalogue left out)."""
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() where database_name = current_database() "
        "union all select schema_name || '.' || view_name from duckdb_views() "
        "where database_name = current_database() and not internal order by 1"
    ).fetchall()
    return [name for (name,) in rows]


def unregistered_tables(
    con: duckdb.DuckDBPyConnection, database: str, stores: Iterable[TableStore] | None = None
) -> list[str]:
    """Tables and views of `con` (database `warehouse` or `serving`) that no table store names."""
    if database not in DATABASES:
        raise ValueError(f"database must be one of {DATABASES}, got {database!r}")
    registered = {s.table for s in (table_stores() if stores is None else stores) if s.database == database}
    return [name for name in database_tables(con) if name not in registered]
