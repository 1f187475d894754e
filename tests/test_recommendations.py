"""The item-item recommender (ml/recommendations.py): similarities and recommendations computed by hand on a tiny
history, and on the demo generator's data a lift over the popularity baseline that the planted per-persona
preferences make real."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.recommendations import (
    INTERACTION_WEIGHTS,
    ItemItemRecommender,
    evaluate,
    popularity_recommendations,
    split_by_time,
)

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.slow
def test_on_the_demo_data_item_item_beats_popularity_by_half_again(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "demo_events", "--data-dir", str(tmp_path), "--users", "3000", "--seed", "42",
         "--file-rows", "50000", "--format", "jsonl", "--quiet"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    files = [str(p) for p in sorted((tmp_path / "landing").glob("*.jsonl*"))]
    interactions = duckdb.sql(
        """
        select coalesce(userId, anonymousId) as user_id, lower(replace(event, ' ', '_')) as event_name,
            properties ->> 'product_id' as product_id, try_cast("timestamp" as timestamptz) as event_at
        from read_json($files, format = 'newline_delimited', ignore_errors = true, columns = {
            userId: 'varchar', anonymousId: 'varchar', event: 'varchar', properties: 'json', "timestamp": 'varchar'})
        where event in ('Product Viewed', 'Product Added', 'Order Completed')
        """,
        params={"files": files},
    ).df()
    truth = pd.read_parquet(tmp_path / "demo_truth" / "users.parquet")
    end = pd.Timestamp(truth["signup_at"].max()).tz_convert("UTC") + pd.Timedelta(days=60)
    interactions = interactions.dropna()[lambda f: f["event_at"] < end]  # the generator's defective rows out
    interactions["weight"] = interactions["event_name"].map(INTERACTION_WEIGHTS)
    split = split_by_time(interactions, holdout_days=14)
    users = np.array(sorted(split.test["user_id"].unique()))
    segments = truth[["user_id", "persona"]].rename(columns={"persona": "segment"})
    model = ItemItemRecommender().fit(split.train, segments)
    catalogue = split.train["product_id"].nunique()
    ours = evaluate(model.recommend(split.train, segments, users), split.test, catalogue, 10)
    baseline = evaluate(popularity_recommendations(split.train, users, 10), split.test, catalogue, 10)
    assert ours["test_users"] > 300
    assert ours["precision_at_10"] >= 1.5 * baseline["precision_at_10"]
    assert ours["coverage"] > 2 * baseline["coverage"]
