"""The DDL of every warehouse table dbt does not build, and the one way to open the warehouse.

Each table is declared once here, with its columns and the statements that upgrade a warehouse made before a
column existed; the package that writes it calls `ensure(con, "<schema>.<table>")` (or a whole schema) before its
first write. The ml.* contract tables are also created empty by dbt's `create_ml_contract_tables` macro at the start
of every dbt run, and dbt reads raw.* and ml.* as sources: tests/test_stores.py checks both against these columns.
Who writes each table and whether it holds personal data: stores/registry.py (HAND_TABLES).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Column:
    """One column: name, DuckDB type, and any constraint (`not null`, `primary key`, a default)."""

    name: str
    type: str
    constraint: str = ""

    def sql(self) -> str:
        return " ".join(part for part in (self.name, self.type, self.constraint) if part)


@dataclass(frozen=True)
class TableSchema:
    """A table's columns, in order, and the statements that bring an older warehouse's table up to them."""

    table: str  # schema.table
    columns: tuple[Column, ...]
    upgrades: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return self.table.split(".")[0]

    @property
    def column_types(self) -> dict[str, str]:
        """{column: DuckDB type}, in order."""
        return {column.name: column.type for column in self.columns}

    def create_sql(self) -> str:
        body = ",\n    ".join(column.sql() for column in self.columns)
        return f"create table if not exists {self.table} (\n    {body}\n)"


def _table(table: str, columns: str, *upgrades: str) -> TableSchema:
    """A TableSchema from `name type [constraint]` lines."""
    parsed = []
    for line in columns.strip().splitlines():
        name, kind, *constraint = line.split()
        parsed.append(Column(name, kind, " ".join(constraint)))
    return TableSchema(table, tuple(parsed), upgrades)


TABLES: dict[str, TableSchema] = {
    spec.table: spec
    for spec in (
        # -- raw: ingestion loads them; expectations.gate sets load_manifest.gate_status and writes raw.batches
        _table(
            "raw.events",
            """
            message_id varchar not null
            user_id varchar
            anonymous_id varchar
            type varchar not null
            event varchar
            timestamp timestamp not null
            received_at timestamp not null
            properties json
            traits json
            context json
            source_file varchar not null
            source_line bigint not null
            loaded_at timestamp not null
            """,
        ),
        _table(
            "raw.events_rejected",
            """
            source_file varchar not null
            line_number bigint
            reason varchar not null
            raw_line varchar
            rejected_at timestamp not null
            """,
        ),
        _table(
            "raw.load_manifest",
            """
            file_name varchar not null
            checksum varchar not null
            file_size bigint not null
            file_mtime double not null
            rows_in bigint not null
            rows_loaded bigint not null
            rows_duplicate bigint not null
            rows_rejected bigint not null
            status varchar not null
            detail varchar
            loaded_at timestamp not null
            load_seconds double not null
            batch_id varchar
            gate_status varchar
            attempts integer
            rows_erased bigint default 0
            """,
            # added with the batch gate and per-file isolation: "if not exists" upgrades older warehouses
            "alter table raw.load_manifest add column if not exists batch_id varchar",
            "alter table raw.load_manifest add column if not exists gate_status varchar",
            "alter table raw.load_manifest add column if not exists attempts integer",
            # privacy: rows of erased (suppressed) users, dropped at load or removed from the file by an erasure
            "alter table raw.load_manifest add column if not exists rows_erased bigint default 0",
        ),
        _table(
            "raw.batches",
            """
            batch_id varchar primary key
            started_at timestamp not null
            files integer not null
            rows_in bigint not null
            rows_loaded bigint not null
            gate_status varchar not null
            gate_detail varchar
            checked_at timestamp
            """,
        ),
        # -- ml: the ML assets replace them whole (ml.warehouse.replace_table)
        _table(
            "ml.user_clusters",
            """
            user_id varchar
            cluster_id integer
            cluster_name varchar
            confidence double
            events bigint
            is_low_data boolean
            model_version varchar
            """,
        ),
        _table(
            "ml.churn_scores",
            """
            user_id varchar
            churn_probability double
            risk_tier varchar
            as_of timestamp
            model_version varchar
            """,
        ),
        _table(
            "ml.model_metrics",
            """
            model_name varchar
            model_version varchar
            is_champion boolean
            trained_at timestamp
            as_of timestamp
            metric varchar
            value double
            run_id varchar
            """,
        ),
        _table(
            "ml.recommendations",
            """
            user_id varchar
            rank integer
            product_id varchar
            score double
            source varchar
            model_version varchar
            """,
        ),
        _table(
            "ml.popular_products",
            """
            segment varchar
            rank integer
            product_id varchar
            users bigint
            model_version varchar
            """,
        ),
        _table(
            "ml.experiment_factorial_effects",
            """
            experiment_id varchar
            effect varchar
            log_odds double
            std_error double
            ci_low double
            ci_high double
            odds_ratio double
            odds_ratio_ci_low double
            odds_ratio_ci_high double
            p_value double
            users bigint
            mlflow_run_id varchar
            """,
        ),
        # -- activation: one row per delivery key, one per webhook POST
        _table(
            "activation.delivery_log",
            """
            delivery_key varchar primary key
            audience varchar not null
            source_table varchar not null
            user_id varchar
            entered_at timestamp
            exported_file varchar
            exported_at timestamp
            status varchar not null
            attempts integer not null default 0
            last_http_status integer
            last_response varchar
            last_attempt_at timestamp
            batch_id varchar
            sent_at timestamp
            """,
        ),
        _table(
            "activation.delivery_attempts",
            """
            batch_id varchar not null
            audience varchar not null
            attempt integer not null
            attempted_at timestamp not null
            items integer not null
            http_status integer
            response varchar
            accepted boolean not null
            """,
        ),
        # -- meta: per expectation suite, the newest watermark whose rows passed
        _table(
            "meta.suite_watermarks",
            """
            suite varchar primary key
            validated_through timestamp not null
            updated_at timestamp not null
            """,
        ),
    )
}
# the ml.* tables whose columns are a contract with dbt (sources, the on-run-start macro) and the dashboard
ML_CONTRACT_TABLES = ("ml.user_clusters", "ml.churn_scores", "ml.model_metrics")
# ml.* tables no model reads, published for analysts and the live profile API (which loads them into Redis)
ML_SERVED_TABLES = ("ml.recommendations", "ml.popular_products")


def ensure(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Create each named table (`schema.table`) or every table of each named schema, with its schema, when
    missing, and bring older ones up to their columns."""
    wanted = [spec for spec in TABLES.values() if spec.table in names or spec.schema in names]
    unknown = set(names) - {spec.table for spec in wanted} - {spec.schema for spec in wanted}
    if unknown:
        raise ValueError(f"no table or schema {sorted(unknown)} in stores.schema.TABLES")
    for spec in wanted:
        con.execute(f"create schema if not exists {spec.schema}")
        con.execute(spec.create_sql())
        for statement in spec.upgrades:
            con.execute(statement)


def connect(path: str, *, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with UTC as session time zone, so naive timestamps mean UTC everywhere; `memory_limit`
    (e.g. '2GB' or '50%') bounds what DuckDB holds before it spills to disk or fails the statement."""
    con = duckdb.connect(path, read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    if memory_limit:
        # a setting of the database instance (a config at connect would clash with connections already open)
        con.execute("set memory_limit = ?", [memory_limit])
    return con
