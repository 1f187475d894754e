"""The Dagster code location: ingestion, dbt models and ML assets as one asset graph."""
