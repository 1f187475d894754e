"""Product recommendations: an item-item collaborative-filtering model from co-occurrence (cosine similarity of the
users who viewed, added or ordered two products), evaluated on a time holdout by precision@10, recall@10 and
coverage against a popularity baseline; new users (no history before the holdout) get the popularity within their
segment (cold start).

Plain Python (numpy, scipy, scikit-learn's estimator base so that MLflow and skops save it): the Dagster asset in
orchestration/defs/ml/ reads the interactions from the warehouse and writes ml.recommendations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sparse
from sklearn.base import BaseEstimator

# An interaction's weight by event: how much it says about wanting the product
INTERACTION_WEIGHTS = {"product_viewed": 1.0, "product_added": 3.0, "order_completed": 5.0}
UNKNOWN_SEGMENT = "(none)"
ALL_SEGMENTS = "(all)"  # the popularity over every user, for users of no known segment
SCORE_CHUNK_USERS = 2_000  # users x products scores held at once while recommending


@dataclass(frozen=True)
class RecommendationParams:
    """How the model is trained and judged."""

    n: int = 10  # the k of precision@k and recall@k
    neighbours: int = 50  # similar products kept per product
    holdout_days: int = 14  # the last days of interactions are the holdout
    max_products: int = 5_000  # the catalogue the model learns: the products most users touched


def user_item_matrix(interactions: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> sparse.csr_matrix:
    """users x items, the sum of a user's interaction weights with each item (log-damped)."""
    user_index = pd.Index(users).get_indexer(interactions["user_id"])
    item_index = pd.Index(items).get_indexer(interactions["product_id"])
    keep = (user_index >= 0) & (item_index >= 0)
    matrix = sparse.csr_matrix(
        (interactions["weight"].to_numpy(dtype=np.float64)[keep], (user_index[keep], item_index[keep])),
        shape=(len(users), len(items)),
    )
    matrix.sum_duplicates()
    matrix.data = np.log1p(matrix.data)
    return matrix


class ItemItemRecommender(BaseEstimator):
    """Item-item collaborative filtering with segment popularity for users without history.

    Fitted: items_ (product ids), neighbours_ / neighbour_scores_ (items x `neighbours`: the most similar items and
    their cosine similarity), popularity_ (users who touched each item), segments_ and segment_popularity_ (the same
    per segment).
    """

    def __init__(self, neighbours: int = 50, n: int = 10, max_products: int = 5_000) -> None:
        self.neighbours = neighbours
        self.n = n
        self.max_products = max_products

    def fit(self, interactions: pd.DataFrame, segments: pd.DataFrame | None = None) -> ItemItemRecommender:
        """interactions: user_id, product_id, weight; segments: user_id, segment (for cold start).

        Only the `max_products` products most users touched are learned (ties by id): product ids are client
        values, and the similarity matrix is products x products."""
        users = np.array(sorted(interactions["user_id"].unique()), dtype=str)
        items = catalogue(interactions, self.max_products)
        matrix = user_item_matrix(interactions, users, items)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0))).ravel()
        norms[norms == 0] = 1.0
        normalised = matrix @ sparse.diags(1.0 / norms)
        similarity = (normalised.T @ normalised).toarray()
        np.fill_diagonal(similarity, 0.0)
        k = min(self.neighbours, max(len(items) - 1, 1))
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        self.items_ = items
        self.neighbours_ = order.astype(np.int32)
        self.neighbour_scores_ = np.take_along_axis(similarity, order, axis=1)
        touched = (matrix > 0).astype(np.float64)
        self.popularity_ = np.asarray(touched.sum(axis=0)).ravel()
        segment_of = _segments_of(users, segments)
        self.segments_ = np.array(sorted(set(segment_of)), dtype=str)
        segment_index = pd.Index(self.segments_).get_indexer(segment_of)
        by_segment = sparse.csr_matrix(
            (np.ones(len(users)), (segment_index, np.arange(len(users)))), shape=(len(self.segments_), len(users))
        )
        self.segment_popularity_ = np.asarray((by_segment @ touched).todense())
        return self

    def _scores(self, history: sparse.csr_matrix) -> np.ndarray:
        """users x items: each user's history weights spread over the items similar to them."""
        spread = sparse.csr_matrix(
            (self.neighbour_scores_.ravel(), self.neighbours_.ravel(), np.arange(0, self.neighbours_.size + 1,
             self.neighbours_.shape[1])),
            shape=(len(self.items_), len(self.items_)),
        )  # fmt: skip
        return np.asarray((history @ spread).todense())

    def recommend(
        self,
        interactions: pd.DataFrame,
        segments: pd.DataFrame | None = None,
        users: np.ndarray | None = None,
        n: int | None = None,
    ) -> pd.DataFrame:
        """Top `n` (default the model's) products for each user (of `users`, default those in `interactions`) not
        in its history: by item similarity when it has a history, else by its segment's popularity (source
        'segment_popularity'). Columns: user_id, rank, product_id, score, source. Users are scored in chunks, so
        memory is bounded by the chunk, not by the number of users."""
        users = np.array(sorted(interactions["user_id"].unique()) if users is None else users, dtype=str)
        n = self.n if n is None else n
        known = interactions[interactions["user_id"].isin(users)]
        chunks = [
            self._recommend_chunk(known, segments, users[start : start + SCORE_CHUNK_USERS], n)
            for start in range(0, len(users), SCORE_CHUNK_USERS)
        ]
        return pd.concat(chunks, ignore_index=True) if chunks else _top_n(users, self.items_, np.empty((0, 0)), 0, [])

    def _recommend_chunk(
        self, interactions: pd.DataFrame, segments: pd.DataFrame | None, users: np.ndarray, n: int
    ) -> pd.DataFrame:
        interactions = interactions[interactions["user_id"].isin(users)]
        history = user_item_matrix(interactions, users, self.items_)
        scores = self._scores(history)
        has_history = np.asarray(history.sum(axis=1)).ravel() > 0
        segment_of = pd.Index(self.segments_).get_indexer(_segments_of(users, segments))
        cold = np.where(
            (segment_of >= 0)[:, None],
            self.segment_popularity_[np.maximum(segment_of, 0)],
            self.popularity_[None, :],
        )
        cold = cold / max(float(cold.max(initial=0)), 1.0) * 1e-6  # below any similarity: only fills gaps
        scores = np.where(has_history[:, None], scores + cold, cold)
        scores[history.nonzero()] = -np.inf  # nothing the user already touched
        return _top_n(users, self.items_, scores, n, np.where(has_history, "item_item", "segment_popularity"))

    def popular(self, n: int) -> pd.DataFrame:
        """The `n` products most users of each segment touched, and over all users (segment ALL_SEGMENTS): what a
        user the model has no row for gets. Columns: segment, rank, product_id, users."""
        names = np.array([*self.segments_, ALL_SEGMENTS], dtype=str)
        counts = np.vstack([self.segment_popularity_, self.popularity_[None, :]])
        frame = _top_n(names, self.items_, counts.astype(np.float64), n, np.full(len(names), ""))
        frame = frame[frame["score"] > 0].rename(columns={"user_id": "segment", "score": "users"})
        return frame.drop(columns="source").astype({"users": "int64"}).reset_index(drop=True)

    def predict(self, interactions: pd.DataFrame) -> pd.DataFrame:
        """For MLflow (signature, pyfunc): recommend() for the users of `interactions` (user_id, product_id,
        weight), without segments."""
        return self.recommend(interactions)


def popularity_recommendations(train: pd.DataFrame, users: np.ndarray, n: int) -> pd.DataFrame:
    """The baseline: the products most users touched in `train`, each user's own ones left out."""
    items = np.array(sorted(train["product_id"].unique()), dtype=str)
    history = user_item_matrix(train, users, items)
    popularity = np.asarray((user_item_matrix(train, np.array(sorted(train["user_id"].unique())), items) > 0).sum(0))
    scores = np.tile(popularity.ravel().astype(np.float64), (len(users), 1))
    scores[history.nonzero()] = -np.inf
    return _top_n(users, items, scores, n, np.full(len(users), "popularity"))


def catalogue(interactions: pd.DataFrame, max_products: int) -> np.ndarray:
    """The product ids a model learns (sorted): the `max_products` touched by the most users, ties by id."""
    users = interactions.groupby("product_id")["user_id"].nunique().reset_index(name="users")
    kept = users.sort_values(["users", "product_id"], ascending=[False, True]).head(max_products)
    return np.array(sorted(kept["product_id"]), dtype=str)


def _segments_of(users: np.ndarray, segments: pd.DataFrame | None) -> np.ndarray:
    if segments is None or segments.empty:
        return np.full(len(users), UNKNOWN_SEGMENT)
    lookup = segments.drop_duplicates("user_id").set_index("user_id")["segment"]
    return lookup.reindex(users).fillna(UNKNOWN_SEGMENT).astype(str).to_numpy()


def _top_n(users: np.ndarray, items: np.ndarray, scores: np.ndarray, n: int, sources: np.ndarray) -> pd.DataFrame:
    n = min(n, len(items))
    if n == 0 or len(users) == 0:
        return pd.DataFrame(columns=["user_id", "rank", "product_id", "score", "source"])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    top_scores = np.take_along_axis(scores, top, axis=1)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(users, n),
            "rank": np.tile(np.arange(1, n + 1), len(users)),
            "product_id": items[top.ravel()],
            "score": top_scores.ravel(),
            "source": np.repeat(sources, n),
        }
    )
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)


@dataclass
class HoldoutSplit:
    train: pd.DataFrame
    test: pd.DataFrame  # interactions after the cutoff with products the user had not touched before it
    cutoff: pd.Timestamp


def split_by_time(interactions: pd.DataFrame, holdout_days: int) -> HoldoutSplit:
    """Train on what happened before the last `holdout_days`, test on the new products users touched after."""
    cutoff = pd.Timestamp(interactions["event_at"].max()) - pd.Timedelta(days=holdout_days)
    train = interactions[interactions["event_at"] < cutoff]
    later = interactions[interactions["event_at"] >= cutoff]
    seen = pd.MultiIndex.from_frame(train[["user_id", "product_id"]].drop_duplicates())
    new = ~pd.MultiIndex.from_frame(later[["user_id", "product_id"]]).isin(seen)
    return HoldoutSplit(train, later[new], cutoff)


def evaluate(recommended: pd.DataFrame, test: pd.DataFrame, catalogue: int, n: int) -> dict[str, float]:
    """precision@n, recall@n (over the test users; `recommended` in rank order per user), coverage (share of the
    catalogue recommended to anyone)."""
    relevant = test[["user_id", "product_id"]].drop_duplicates()
    wanted = relevant.groupby("user_id").size()
    top = recommended[recommended.groupby("user_id").cumcount() < n][["user_id", "product_id"]]
    hits = top.merge(relevant, on=["user_id", "product_id"]).groupby("user_id").size()
    hits = hits.reindex(wanted.index, fill_value=0).to_numpy(dtype=np.float64)
    wanted = wanted.to_numpy(dtype=np.float64)
    covered = recommended["product_id"].nunique() / catalogue if catalogue else 0.0
    return {
        f"precision_at_{n}": float(np.mean(hits / n)) if len(wanted) else 0.0,
        f"recall_at_{n}": float(np.mean(hits / wanted)) if len(wanted) else 0.0,
        "coverage": float(covered),
        "test_users": float(len(wanted)),
    }
