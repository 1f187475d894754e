"""Helpers of the ML tests (not fixtures): a small generated warehouse with planted personas and churn."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from demo_events import GeneratorConfig, generate
from ingestion import IngestSettings, ingest_landing
from ml.features import RATE_FEATURES, load_churn_snapshots, load_cluster_inputs, with_mix
from tests.conftest import run_dbt

ML_MODELS = "+ml_user_features +ml_user_mix +ml_churn_snapshots"


def build_generated_warehouse(data_dir: Path, users: int, seed: int = 11) -> None:
    """Generate `users` demo users, load their events and build the ML feature marts with the real dbt."""
    config = GeneratorConfig(users=users, seed=seed, file_rows=200_000, dirty_share=0.0, late_share=0.0)
    generate(config, data_dir)
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    run_dbt(data_dir, "run", "--select", *ML_MODELS.split())


def read_features(data_dir: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.DataFrame]:
    """The clustering inputs (features with the mix) and the mix's population shares, the churn snapshots and the
    generator's truth per user."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        (features, population), snapshots = load_cluster_inputs(con), load_churn_snapshots(con)
    truth = pd.read_parquet(data_dir / "demo_truth" / "users.parquet")
    return features, population, snapshots, truth


def synthetic_cluster_inputs(
    users: int = 400, personas: int = 4, seed: int = 0, prior_events: float = 2.0
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Clustering inputs (as ml.features.load_cluster_inputs returns them) for users of `personas` planted
    personas: rates per persona with noise, and two mix dimensions whose counts are drawn from each persona's
    category weights, 1 to 60 events a user, shrunk as marts.ml_user_mix does. Also the planted persona per user."""
    rng = np.random.default_rng(seed)
    persona = rng.integers(0, personas, users)
    frame = pd.DataFrame(
        {"user_id": [f"u{i:04d}" for i in range(users)], "active_days_total": rng.integers(1, 30, users)}
    )
    for j, rate in enumerate(RATE_FEATURES):
        centres = rng.uniform(1, 10, personas) if j < 2 else np.full(personas, 3.0)
        frame[rate] = np.exp(np.log(centres[persona]) + rng.normal(0, 0.1, users))
    frame["cutoff_at"] = pd.Timestamp("2026-01-01")
    rows = []
    for dimension, categories in (("action", ["a", "b", "c", "d"]), ("device", ["x", "y", "z"])):
        weights = rng.dirichlet(np.full(len(categories), 0.5), personas)
        events = rng.integers(1, 61, users)
        counts = np.array([rng.multinomial(n, weights[p]) for n, p in zip(events, persona, strict=True)])
        population = counts.sum(axis=0) / counts.sum()
        totals = counts.sum(axis=1)
        for c, category in enumerate(categories):
            shrunk = (counts[:, c] + prior_events * population[c]) / (totals + prior_events)
            rows.append(pd.DataFrame({
                "user_id": frame["user_id"], "dimension": dimension, "category": category, "shrunk_share": shrunk,
                "population_share": population[c], "dimension_events": totals, "prior_events": prior_events,
            }))  # fmt: skip
    features, population = with_mix(frame, pd.concat(rows, ignore_index=True))
    return features, population, persona
