"""The item-item recommender (ml/recommendations.py): similarities and recommendations computed by hand on a tiny
history, and on the demo generator's data (through ingestion and dbt) a lift over the popularity baseline that the
planted per-persona preferences make real, tracked and gated in MLflow."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from demo_events import GeneratorConfig, generate
from ingestion import IngestSettings, ingest_landing
from ml.features import load_product_interactions, load_user_segments
from ml.recommendations import (
    ALL_SEGMENTS,
    ItemItemRecommender,
    evaluate,
    popularity_recommendations,
)
from ml.settings import RECOMMENDATION_MODEL, using
from ml.tracking import champion_version, client
from ml.training import score_recommendations, train_recommendation_model
from settings import MLSettings
from tests.conftest import run_dbt


def views(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [u for u, _ in pairs], "product_id": [p for _, p in pairs], "weight": 1.0})


def test_recommendations_computed_by_hand():
    history = views(("u1", "A"), ("u1", "B"), ("u2", "A"), ("u2", "B"), ("u3", "A"), ("u4", "C"), ("u5", "C"))
    segments = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3", "u4", "u5", "new"], "segment": ["s", "s", "s", "t", "t", "t"]}
    )
    model = ItemItemRecommender(neighbours=2, n=2).fit(history, segments)
    assert list(model.items_) == ["A", "B", "C"]
    # A is touched by u1, u2, u3 and B by u1, u2 (each log1p(1)): cosine 2 / sqrt(3 * 2); C shares no user
    a = 0  # product A
    assert model.neighbour_scores_[a][0] == pytest.approx(2 / math.sqrt(6))
    assert model.items_[model.neighbours_[a][0]] == "B"
    assert model.neighbour_scores_[a][1] == 0.0
    assert list(model.popularity_) == [3.0, 2.0, 2.0]
    recommended = model.recommend(history, segments, users=np.array(["u3", "new"]))
    rows = recommended.to_dict("records")
    # u3 has A: B first by similarity (log1p(1) x 2 / sqrt(6)), then C only to fill (a tiny popularity score)
    assert [(r["user_id"], r["rank"], r["product_id"], r["source"]) for r in rows] == [
        ("u3", 1, "B", "item_item"),
        ("u3", 2, "C", "item_item"),
        ("new", 1, "C", "segment_popularity"),  # segment t touched C twice, A and B never
        ("new", 2, "A", "segment_popularity"),
    ]
    assert rows[0]["score"] == pytest.approx(math.log1p(1) * 2 / math.sqrt(6), rel=1e-4)
    popular = popularity_recommendations(history, np.array(["u4"]), 2)
    assert list(popular["product_id"]) == ["A", "B"]  # u4's own C left out
    # u3 then touched B and C: precision@2 of [B, C] is 1, recall 1; coverage 2 of 3 products
    test = views(("u3", "B"), ("u3", "C"))
    assert evaluate(recommended[recommended.user_id == "u3"], test, 3, 2) == {
        "precision_at_2": 1.0, "recall_at_2": 1.0, "coverage": pytest.approx(2 / 3), "test_users": 1.0,
    }  # fmt: skip


def test_a_flood_of_made_up_product_ids_does_not_grow_the_model():
    # a client sends 10,000 distinct product ids once each; the catalogue keeps the products most users touched
    real = views(("u1", "A"), ("u1", "B"), ("u2", "A"), ("u2", "B"), ("u3", "A"))
    flood = views(*[("bot", f"fake-{i:05d}") for i in range(10_000)])
    model = ItemItemRecommender(neighbours=5, n=3, max_products=3).fit(pd.concat([real, flood]))
    # A (3 users), B (2), then the first of the 1-user products by id
    assert list(model.items_) == ["A", "B", "fake-00000"]
    assert model.neighbour_scores_.shape == (3, 2)
    recommended = model.recommend(real, users=np.array(["u3"]))
    assert list(recommended["product_id"][:1]) == ["B"]


@pytest.mark.slow
def test_on_the_demo_warehouse_item_item_beats_popularity_and_the_champion_serves(tmp_path: Path):
    """Demo data through ingestion and the real dbt models into the model's mart, trained and gated in a real
    MLflow store: precision@10 at least 1.5x the popularity baseline (the planted per-persona preferences), every
    user recommended, a retraining that is no better leaves the champion."""
    data_dir = tmp_path / "data"
    config = GeneratorConfig(users=3000, seed=42, file_rows=200_000, dirty_share=0.0, late_share=0.0)
    generate(config, data_dir)
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    run_dbt(data_dir, "run", "--select", "+ml_product_interactions")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        interactions = load_product_interactions(con)
        assert load_user_segments(con).empty  # no clustering scored: everyone falls back to the overall popularity
    truth = pd.read_parquet(data_dir / "demo_truth" / "users.parquet")
    segments = truth[["user_id", "persona"]].rename(columns={"persona": "segment"})
    with using(MLSettings(data_dir=data_dir)):
        training = train_recommendation_model(interactions, segments)
        metrics = training.metrics
        assert metrics["test_users"] > 300
        assert metrics["holdout_precision_at_10"] >= 1.5 * metrics["baseline_precision_at_10"]
        assert metrics["holdout_coverage"] > 2 * metrics["baseline_coverage"]
        assert training.outcome.promoted and training.outcome.model_version == "1"
        frame, popular, version = score_recommendations(interactions, segments, per_user=20)
        again = train_recommendation_model(interactions, segments)
        assert not again.outcome.promoted  # the same holdout precision is not better: champion v1 kept
        assert champion_version(client(), RECOMMENDATION_MODEL) == "1"
    assert version == "1"
    assert set(frame["user_id"]) == set(interactions["user_id"]) | set(segments["user_id"])
    assert frame.groupby("user_id").size().max() == 20
    # never a product the user already touched
    touched = set(zip(interactions["user_id"], interactions["product_id"], strict=True))
    assert not any(pair in touched for pair in zip(frame["user_id"], frame["product_id"], strict=True))
    assert set(popular["segment"]) == {*truth["persona"].unique(), ALL_SEGMENTS}
    overall = popular[popular["segment"] == ALL_SEGMENTS]
    assert list(overall["rank"]) == list(range(1, 21)) and overall["users"].is_monotonic_decreasing
