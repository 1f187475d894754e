"""The warehouse on Apache Spark (DBT_TARGET=spark): the Parquet tables the dbt spark target reads and writes.

Only dbt talks to Spark. Everything else reads and writes Parquet files with DuckDB: ingestion keeps its ledger in
warehouse.duckdb and exports each loaded file's rows to `raw/` (`raw_export`), the ML assets read the marts' Parquet
files and write `ml/` (`tables`), and the serving copy is published from the same files. No process but dbt opens
the Spark metastore (embedded Derby admits one), so a Python step never waits on a Spark session.
"""
