"""The raw tables ingestion owns. dbt reads them as sources; nothing else writes them."""

from __future__ import annotations

import duckdb

RAW_DDL = (
    "create schema if not exists raw",
    """
    create table if not exists raw.events (
        message_id   varchar not null,
        user_id      varchar,
        anonymous_id varchar,
        type         varchar not null,
        event        varchar,
        timestamp    timestamp not null,
        received_at  timestamp not null,
        properties   json,
        traits       json,
        context      json,
        source_file  varchar not null,
        source_line  bigint not null,
        loaded_at    timestamp not null
    )
    """,
    """
    create table if not exists raw.events_rejected (
        source_file varchar not null,
        line_number bigint,
        reason      varchar not null,
        raw_line    varchar,
        rejected_at timestamp not null
    )
    """,
    """
    create table if not exists raw.load_manifest (
        file_name      varchar not null,
        checksum       varchar not null,
        file_size      bigint not null,
        file_mtime     double not null,
        rows_in        bigint not null,
        rows_loaded    bigint not null,
        rows_duplicate bigint not null,
        rows_rejected  bigint not null,
        status         varchar not null,
        detail         varchar,
        loaded_at      timestamp not null,
        load_seconds   double not null
    )
    """,
    # Added with the batch gate; "if not exists" upgrades warehouses made before it.
    "alter table raw.load_manifest add column if not exists batch_id varchar",
    "alter table raw.load_manifest add column if not exists gate_status varchar",
    # Added with per-file isolation: how many runs tried the file (null on rows from before it: one).
    "alter table raw.load_manifest add column if not exists attempts integer",
    """
    create table if not exists raw.batches (
        batch_id        varchar primary key,
        started_at      timestamp not null,
        files           integer not null,
        rows_in         bigint not null,
        rows_loaded     bigint not null,
        gate_status     varchar not null,
        gate_detail     varchar,
        checked_at      timestamp
    )
    """,
)


def connect(path: str, *, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with UTC as session time zone, so naive timestamps mean UTC everywhere; `memory_limit`
    (e.g. '2GB' or '50%') bounds what DuckDB holds before it spills to disk or fails the statement."""
    con = duckdb.connect(path, read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    if memory_limit:
        # a setting of the database instance (a config at connect would clash with connections already open)
        con.execute("set memory_limit = ?", [memory_limit])
    return con


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and its tables when they do not exist yet."""
    for statement in RAW_DDL:
        con.execute(statement)
