"""Behavioural clusters: scaling, optional PCA, K-Means and Gaussian mixtures over a range of k chosen by
silhouette (Davies-Bouldin breaks ties), DBSCAN for comparison, stable ids across retrains and readable names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import DBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.features import CLUSTER_FEATURES, LOG_FEATURES, NotEnoughData

LIGHT_CLUSTER_ID = 0

# Name -> signature over CLUSTER_FEATURES (coupon, feature use, product views, cart adds, page views, events per
# session). Clusters get the names whose signatures their standardised profiles match best, each name once.
NAME_SIGNATURES: dict[str, tuple[float, ...]] = {
    "power users": (0.0, 1.0, -0.3, 0.0, -0.5, 1.0),
    "discount seekers": (1.0, -0.3, 0.5, 0.5, 0.0, 0.0),
    "casual browsers": (-0.3, -0.5, 0.0, -0.3, 1.0, -0.5),
    "steady feature users": (0.0, 0.6, -0.3, 0.0, 0.0, -0.3),
    "shoppers": (-0.3, -0.3, 1.0, 1.0, -0.3, 0.0),
    "quick visitors": (0.0, -0.5, 0.0, 0.0, 0.3, -1.0),
}


@dataclass(frozen=True)
class ClusterParams:
    """How clusters are searched for; users with fewer than min_active_days active days are 'light users'
    (too little behaviour to characterise) and get cluster 0 by rule."""

    min_active_days: int = 8
    k_min: int = 4
    k_max: int = 8
    pca_variance: float | None = 0.9
    holdout_share: float = 0.2
    min_users: int = 40
    max_silhouette_rows: int = 2000
    random_state: int = 0


def transform(frame: pd.DataFrame, features: tuple[str, ...] = CLUSTER_FEATURES) -> np.ndarray:
    """The clustering inputs: heavy-tailed features on a log scale, shares as they are."""
    missing = [c for c in features if c not in frame]
    if missing:
        raise ValueError(f"features frame lacks clustering columns {missing}")
    columns = [np.log1p(frame[c].to_numpy(float)) if c in LOG_FEATURES else frame[c].to_numpy(float) for c in features]
    return np.column_stack(columns)


class StableClusterer(BaseEstimator):
    """A fitted clustering that maps users to stable cluster ids and names (what MLflow stores and scoring loads).

    `predict` takes the feature columns plus active_days_total and returns cluster ids; light users get 0. Its
    state is only sklearn, numpy and builtin values (the centroids as an array with their ids, not a DataFrame),
    so it is saved with skops and loaded with an explicit list of trusted types (ml.tracking.TRUSTED_TYPES).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        id_map: dict[int, int],
        names: dict[int, str],
        centroids: np.ndarray,
        centroid_ids: tuple[int, ...],
        min_active_days: int,
        features: tuple[str, ...] = CLUSTER_FEATURES,
    ) -> None:
        self.pipeline = pipeline
        self.id_map = id_map
        self.names = names
        self.centroids = centroids
        self.centroid_ids = centroid_ids
        self.min_active_days = min_active_days
        self.features = features

    def centroid_frame(self) -> pd.DataFrame:
        """Mean clustering features of each stable cluster id (training users), for matching the next model."""
        index = pd.Index(list(self.centroid_ids), name="cluster_id")
        return pd.DataFrame(np.asarray(self.centroids, dtype=float), index=index, columns=list(CLUSTER_FEATURES))

    def is_light(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["active_days_total"].to_numpy(float) < self.min_active_days

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        ids = np.full(len(frame), LIGHT_CLUSTER_ID, dtype=np.int64)
        established = ~self.is_light(frame)
        if established.any():
            raw = self.pipeline.predict(transform(frame.loc[established], self.features))
            ids[established] = [self.id_map[int(label)] for label in raw]
        return ids

    def name_of(self, cluster_ids: np.ndarray) -> list[str]:
        return [self.names.get(int(i), f"cluster {i}") for i in cluster_ids]


@dataclass
class ClusteringResult:
    model: StableClusterer
    algorithm: str
    k: int
    scores: pd.DataFrame  # one row per candidate: algorithm, k, silhouette, davies_bouldin
    dbscan: dict[str, float]
    holdout_users: list[str]
    holdout_silhouette: float
    training_frame: pd.DataFrame
    assignments: pd.DataFrame  # user_id, cluster_id, cluster_name
    profiles: pd.DataFrame  # one row per cluster id: users, share and mean features
    matched_to_previous: dict[int, float] = field(default_factory=dict)  # stable id -> centroid distance


def in_holdout(user_ids: pd.Series, share: float) -> np.ndarray:
    """A fixed share of users by hash of their id, so the same user stays in (or out of) the holdout."""

    def bucket(user_id: str) -> float:
        return int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    return np.array([bucket(str(u)) < share for u in user_ids])


def _estimator(algorithm: str, k: int, random_state: int) -> KMeans | GaussianMixture:
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=random_state)
    return GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=random_state)


def _silhouette(x: np.ndarray, labels: np.ndarray, max_rows: int, random_state: int) -> float:
    if len(set(labels.tolist())) < 2:
        return -1.0
    return float(silhouette_score(x, labels, sample_size=min(max_rows, len(x)), random_state=random_state))


def dbscan_summary(z: np.ndarray, random_state: int = 0) -> dict[str, float]:
    """DBSCAN on the scaled space with eps at the 90th percentile of the k-nearest-neighbour distance: how many
    dense groups it finds, the share it calls noise and their silhouette. Logged for comparison; it cannot assign
    users it was not fitted on, so it is never the deployed model."""
    min_samples = max(5, 2 * z.shape[1])
    if len(z) <= min_samples:
        return {"dbscan_clusters": 0.0, "dbscan_noise_share": 1.0, "dbscan_silhouette": -1.0}
    distances, _ = NearestNeighbors(n_neighbors=min_samples).fit(z).kneighbors(z)
    eps = float(np.quantile(distances[:, -1], 0.9))
    labels = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(z)
    core = labels >= 0
    clusters = len(set(labels[core].tolist()))
    silhouette = _silhouette(z[core], labels[core], 5000, random_state) if clusters >= 2 else -1.0
    return {
        "dbscan_clusters": float(clusters),
        "dbscan_noise_share": float(1 - core.mean()),
        "dbscan_silhouette": silhouette,
        "dbscan_eps": eps,
    }


def name_clusters(centroids: pd.DataFrame, overall_mean: pd.Series, overall_std: pd.Series) -> dict[int, str]:
    """Readable names: each cluster's standardised profile against the name signatures, each name used once."""
    z = ((centroids[list(CLUSTER_FEATURES)] - overall_mean) / overall_std.replace(0, 1)).to_numpy()
    signatures = np.array(list(NAME_SIGNATURES.values()))
    signatures = signatures / np.linalg.norm(signatures, axis=1, keepdims=True)
    rows, cols = linear_sum_assignment(-(z @ signatures.T))
    names = {int(centroids.index[r]): list(NAME_SIGNATURES)[c] for r, c in zip(rows, cols, strict=True)}
    for cluster_id in centroids.index:
        names.setdefault(int(cluster_id), f"segment {cluster_id}")
    return names


def match_to_previous(
    new_centroids: np.ndarray, previous: pd.DataFrame | None, scale: tuple[np.ndarray, np.ndarray]
) -> tuple[dict[int, int], dict[int, float]]:
    """Stable ids: Hungarian matching of the new clusters' centroids to the previous model's (in the new scaled
    space); matched clusters keep the old id, the rest get ids after the largest one used so far."""
    k = len(new_centroids)
    if previous is None or previous.empty:
        return {i: i + 1 for i in range(k)}, {}
    mean, std = scale
    old = (transform(previous) - mean) / std
    new = (new_centroids - mean) / std
    cost = np.linalg.norm(new[:, None, :] - old[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    id_map = {int(r): int(previous.index[c]) for r, c in zip(rows, cols, strict=True)}
    distances = {int(previous.index[c]): float(cost[r, c]) for r, c in zip(rows, cols, strict=True)}
    next_id = int(max(previous.index.max(), 0)) + 1
    for i in range(k):
        if i not in id_map:
            id_map[i] = next_id
            next_id += 1
    return id_map, distances


def train_clustering(
    features: pd.DataFrame, params: ClusterParams | None = None, previous: StableClusterer | None = None
) -> ClusteringResult:
    """Fit every candidate on the established users outside the holdout, keep the best by silhouette, give its
    clusters stable ids and names, and assign every user (light users to cluster 0)."""
    params = params or ClusterParams()
    established = features[features["active_days_total"] >= params.min_active_days].reset_index(drop=True)
    if len(established) < params.min_users:
        raise NotEnoughData(
            f"{len(established)} users have at least {params.min_active_days} active days; clustering needs "
            f"{params.min_users}"
        )
    holdout = in_holdout(established["user_id"], params.holdout_share)
    train = established[~holdout].reset_index(drop=True)
    x = transform(train)
    if np.allclose(x.std(axis=0), 0):
        raise NotEnoughData("every established user has the same behaviour; there is nothing to cluster")
    k_max = min(params.k_max, len(train) // 10)
    if k_max < max(params.k_min, 2):
        raise NotEnoughData(f"{len(train)} training users are too few for {params.k_min} or more clusters")

    preprocess = [("scale", StandardScaler())]
    if params.pca_variance:
        preprocess.append(("pca", PCA(n_components=params.pca_variance, random_state=params.random_state)))
    z = Pipeline(preprocess).fit_transform(x)

    rows, fitted = [], {}
    for algorithm in ("kmeans", "gaussian_mixture"):
        for k in range(params.k_min, k_max + 1):
            estimator = _estimator(algorithm, k, params.random_state).fit(z)
            labels = estimator.predict(z)
            silhouette = _silhouette(z, labels, params.max_silhouette_rows, params.random_state)
            db = float(davies_bouldin_score(z, labels)) if len(set(labels.tolist())) > 1 else float("inf")
            rows.append({"algorithm": algorithm, "k": k, "silhouette": silhouette, "davies_bouldin": db})
            fitted[(algorithm, k)] = estimator
    scores = pd.DataFrame(rows)
    best = scores.sort_values(["silhouette", "davies_bouldin"], ascending=[False, True]).iloc[0]
    algorithm, k = str(best["algorithm"]), int(best["k"])
    # the preprocessing steps are already fitted; the chosen estimator goes after them
    pipeline = Pipeline([(name, step) for name, step in preprocess] + [("cluster", fitted[(algorithm, k)])])

    raw_labels = pipeline.predict(x)
    raw_centroids = np.array(
        [x[raw_labels == i].mean(axis=0) if (raw_labels == i).any() else x.mean(axis=0) for i in range(k)]
    )
    scale = (x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0))
    id_map, distances = match_to_previous(raw_centroids, None if previous is None else previous.centroid_frame(), scale)

    centroid_frame = (
        train[list(CLUSTER_FEATURES)]
        .assign(cluster_id=[id_map[int(label)] for label in raw_labels])
        .groupby("cluster_id")
        .mean()
    )
    names = name_clusters(centroid_frame, train[list(CLUSTER_FEATURES)].mean(), train[list(CLUSTER_FEATURES)].std())
    names[LIGHT_CLUSTER_ID] = f"light users (fewer than {params.min_active_days} active days)"
    model = StableClusterer(
        pipeline,
        id_map,
        names,
        centroid_frame.to_numpy(dtype=float),
        tuple(int(i) for i in centroid_frame.index),
        params.min_active_days,
    )

    ids = model.predict(features)
    assignments = pd.DataFrame(
        {"user_id": features["user_id"].to_numpy(), "cluster_id": ids, "cluster_name": model.name_of(ids)}
    )
    profiles = cluster_profiles(features, ids, names)
    return ClusteringResult(
        model=model,
        algorithm=algorithm,
        k=k,
        scores=scores,
        dbscan=dbscan_summary(z, params.random_state),
        holdout_users=established.loc[holdout, "user_id"].tolist(),
        holdout_silhouette=holdout_silhouette(model, established[holdout]),
        training_frame=train[["user_id", "active_days_total", *CLUSTER_FEATURES]],
        assignments=assignments,
        profiles=profiles,
        matched_to_previous=distances,
    )


def holdout_silhouette(model: StableClusterer, holdout: pd.DataFrame) -> float:
    """Silhouette of a model's assignment of the holdout users, in one space for every model (the holdout's own
    standardised features), so the champion and a challenger are compared on equal terms."""
    holdout = holdout[~model.is_light(holdout)]
    if len(holdout) < 3:
        return float("nan")
    x = StandardScaler().fit_transform(transform(holdout))
    return _silhouette(x, model.predict(holdout), 5000, 0)


def cluster_profiles(features: pd.DataFrame, cluster_ids: np.ndarray, names: dict[int, str]) -> pd.DataFrame:
    """Size, share and mean clustering features of every cluster."""
    frame = features[[*CLUSTER_FEATURES, "active_days_per_week"]].assign(cluster_id=cluster_ids)
    profile = frame.groupby("cluster_id").mean()
    profile.insert(0, "users", frame.groupby("cluster_id").size())
    profile.insert(1, "share_of_users", profile["users"] / profile["users"].sum())
    profile.insert(0, "cluster_name", [names.get(int(i), f"cluster {i}") for i in profile.index])
    return profile.reset_index()
