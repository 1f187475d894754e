"""Helpers of the ML tests (not fixtures): a small generated warehouse with planted personas and churn."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from demo_events import GeneratorConfig, generate
from ingestion import IngestSettings, ingest_landing
from ml.features import load_churn_snapshots, load_user_features
from tests.conftest import run_dbt

ML_MODELS = "+ml_user_features +ml_churn_snapshots"


def build_generated_warehouse(data_dir: Path, users: int, seed: int = 11) -> None:
    """Generate `users` demo users, load their events and build the ML feature marts with the real dbt."""
    config = GeneratorConfig(users=users, seed=seed, file_rows=200_000, dirty_share=0.0, late_share=0.0)
    generate(config, data_dir)
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    run_dbt(data_dir, "run", "--select", *ML_MODELS.split())


def read_features(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The feature mart, the churn snapshots and the generator's truth per user."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        features, snapshots = load_user_features(con), load_churn_snapshots(con)
    truth = pd.read_parquet(data_dir / "demo_truth" / "users.parquet")
    return features, snapshots, truth
