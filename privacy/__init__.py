"""Privacy: erase users everywhere, suppress them afterwards, pseudonymise ids, expire old raw data.

Plain Python (no dagster import): `make erase`, `make export-user`, ingestion, the collector and the Dagster jobs
all call into it. Each erasure walks the store registry (`stores.registry`); docs/privacy.md says what happens to
each store.
"""
