"""Behavioural clusters for every user, however little history it has.

K-Means or a Gaussian mixture (on the standardised rates and shrunk mix shares) proposes k groups; a history-aware
refinement then re-estimates each cluster's profile and places every user by comparing its shrunk shares with each
cluster's profile shrunk by the same amount (a user with three events is compared with what a member of each cluster
looks like after three events, so thin histories are not all drawn to the cluster nearest the population's centre).
At each k the start with the smaller history-aware within-cluster distance is kept, and k is chosen by the
Calinski-Harabasz index over the training users (between- over within-cluster variance, penalised by k), with the
silhouette, Davies-Bouldin index and mean assignment confidence on a sample and the mixture's BIC logged beside it.
Cluster ids stay stable across retrains, names come from the profiles, and every user gets a confidence and the
number of events it rests on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture

from ml.features import (
    MIX_EVENTS,
    RATE_FEATURES,
    NotEnoughData,
    dimension_of,
    mix_columns,
    weight_column,
)

ALGORITHMS = ("kmeans", "gaussian_mixture")

# Name -> signature over feature columns (standardised profile directions). Clusters get the names whose signatures
# their profiles match best, each name once; columns a model does not have are left out of the match.
NAME_SIGNATURES: dict[str, dict[str, float]] = {
    "power users": {
        "mix:action:feature_used": 1.0, "sessions_per_active_day": 0.8, "events_per_session": 0.6,
        "mix:page:Docs": 0.5, "mix:feature:api": 0.5,
    },
    "discount seekers": {"mix:order_coupon:with coupon": 1.0, "mix:action:coupon_applied": 0.6},
    "casual browsers": {
        "mix:action:page_viewed": 0.5, "mix:action:screen_viewed": 0.5, "events_per_session": -0.5,
        "mix:page:Blog": 0.5, "mix:page:Home": 0.3,
    },
    "shoppers": {
        "orders_per_session": 1.0, "mix:action:product_added": 0.8, "mix:action:order_completed": 0.8,
        "mix:page:Checkout": 0.5,
    },
    "steady feature users": {"mix:action:feature_used": 0.5, "mix:page:Account": 0.6, "mix:feature:alerts": 0.6},
    "quick visitors": {"events_per_session": -1.0, "avg_session_minutes": -0.8},
}  # fmt: skip


@dataclass(frozen=True)
class ClusterParams:
    """How clusters are searched for. Users with fewer than low_data_events actions still get a cluster, flagged
    as resting on too little data."""

    low_data_events: int = 10
    k_min: int = 3
    k_max: int = 8
    holdout_share: float = 0.2
    min_users: int = 40
    selection_rows: int = 5000
    max_iterations: int = 50
    random_state: int = 0
    # candidates are fitted on at most this many training users (drawn at random; 0: all of them), and the chosen one
    # is then refined on every training user
    fit_users: int = 20_000


@dataclass
class _Space:
    """The clustering inputs of some users, in the model's columns."""

    rates: np.ndarray  # users x rate features, log1p
    shares: np.ndarray  # users x mix columns, shrunk shares
    weights: np.ndarray  # users x mix columns, weight of the user's own events in the column's dimension


def _space(frame: pd.DataFrame, rates: tuple[str, ...], mix: tuple[str, ...], population: np.ndarray) -> _Space:
    missing = [c for c in rates if c not in frame]
    if missing:
        raise ValueError(f"features frame lacks clustering columns {missing}")
    n = len(frame)
    shares = np.empty((n, len(mix)))
    weights = np.zeros((n, len(mix)))
    for j, column in enumerate(mix):
        # a category the frame lacks (no user has it today): every user sits at the population's share
        shares[:, j] = frame[column].to_numpy(float) if column in frame else population[j]
        weight = weight_column(dimension_of(column))
        if weight in frame:
            weights[:, j] = frame[weight].to_numpy(float)
    return _Space(np.log1p(frame[list(rates)].to_numpy(float)), shares, np.clip(weights, 0.0, 1.0))


def _distances(
    space: _Space,
    rate_centroids: np.ndarray,
    mix_centroids: np.ndarray,
    population: np.ndarray,
    rate_scale: np.ndarray,
    mix_scale: np.ndarray,
) -> np.ndarray:
    """Squared standardised distance of every user to every cluster, the mix part against the cluster's profile
    shrunk by the user's own weight: what a member of that cluster with this user's history would show.

    Per mix column the gap is (share - (1 - weight) * population - weight * centroid) / scale; squared and summed,
    it expands into a user term and two matrix products with the centroids, so no users x clusters x columns array
    is built (that took 16 of the 63 s of training at 10M events)."""
    rates = space.rates / rate_scale
    rate_centres = rate_centroids / rate_scale
    own = (space.shares - (1 - space.weights) * population) / mix_scale
    weight = space.weights / mix_scale
    squared = (
        (rates**2).sum(axis=1)[:, None]
        - 2 * rates @ rate_centres.T
        + (rate_centres**2).sum(axis=1)[None]
        + (own**2).sum(axis=1)[:, None]
        - 2 * (own * weight) @ mix_centroids.T
        + weight**2 @ (mix_centroids**2).T
    )
    return np.maximum(squared, 0.0)  # rounding can take a distance of zero a hair below it


def confidence_of(distances: np.ndarray) -> np.ndarray:
    """1 - (distance to the nearest cluster / distance to the second nearest): 0 for a user half-way between two
    clusters, near 1 for one deep inside its own (a simplified silhouette)."""
    if distances.shape[1] < 2:
        return np.ones(len(distances))
    nearest = np.sqrt(np.partition(distances, 1, axis=1)[:, :2])
    return np.where(nearest[:, 1] > 0, 1 - nearest[:, 0] / np.maximum(nearest[:, 1], 1e-12), 0.0)


class BehaviourClusterer(BaseEstimator):
    """A fitted clustering that places users in stable cluster ids with names (what MLflow stores and scoring loads).

    `assign` takes a features frame (ml.features.load_cluster_inputs) and returns each user's cluster, name,
    confidence and the number of events it rests on. Its state is only numpy arrays and builtin values, so it is
    saved with skops and loaded with an explicit list of trusted types (ml.tracking.TRUSTED_TYPES).
    """

    def __init__(
        self,
        rate_features: tuple[str, ...],
        mix_features: tuple[str, ...],
        population: np.ndarray,
        rate_mean: np.ndarray,
        rate_scale: np.ndarray,
        mix_scale: np.ndarray,
        rate_centroids: np.ndarray,
        mix_centroids: np.ndarray,
        cluster_ids: tuple[int, ...],
        names: dict[int, str],
        low_data_events: int,
    ) -> None:
        self.rate_features = rate_features
        self.mix_features = mix_features
        self.population = population
        self.rate_mean = rate_mean
        self.rate_scale = rate_scale
        self.mix_scale = mix_scale
        self.rate_centroids = rate_centroids
        self.mix_centroids = mix_centroids
        self.cluster_ids = cluster_ids
        self.names = names
        self.low_data_events = low_data_events

    @property
    def features(self) -> tuple[str, ...]:
        """Every input column: the rates and the mix shares (the weights of the mix dimensions are read too)."""
        return (*self.rate_features, *self.mix_features)

    def distances(self, frame: pd.DataFrame) -> np.ndarray:
        """Squared history-aware distance of each user (rows) to each cluster (columns, in cluster_ids order)."""
        space = _space(frame, self.rate_features, self.mix_features, self.population)
        return _distances(
            space, self.rate_centroids, self.mix_centroids, self.population, self.rate_scale, self.mix_scale
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The stable cluster id of each user."""
        if not len(frame):
            return np.array([], dtype=np.int64)
        return np.asarray(self.cluster_ids, dtype=np.int64)[self.distances(frame).argmin(axis=1)]

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per user: cluster_id, cluster_name, confidence, events (its actions in the mix) and is_low_data."""
        distances = self.distances(frame) if len(frame) else np.empty((0, len(self.cluster_ids)))
        ids = np.asarray(self.cluster_ids, dtype=np.int64)[distances.argmin(axis=1)] if len(frame) else []
        events = frame[MIX_EVENTS].to_numpy(np.int64) if MIX_EVENTS in frame else np.zeros(len(frame), np.int64)
        return pd.DataFrame(
            {
                "user_id": frame["user_id"].to_numpy(),
                "cluster_id": np.asarray(ids, dtype=np.int64),
                "cluster_name": self.name_of(np.asarray(ids, dtype=np.int64)),
                "confidence": confidence_of(distances),
                "events": events,
                "is_low_data": events < self.low_data_events,
            }
        )

    def centroid_frame(self) -> pd.DataFrame:
        """Each stable cluster's profile: mean log rates and mix shares at full history (for matching the next
        model's clusters and for naming)."""
        values = np.column_stack([self.rate_centroids, self.mix_centroids])
        return pd.DataFrame(values, index=pd.Index(list(self.cluster_ids), name="cluster_id"), columns=self.features)

    def name_of(self, cluster_ids: np.ndarray) -> list[str]:
        return [self.names.get(int(i), f"cluster {i}") for i in cluster_ids]


@dataclass
class ClusteringResult:
    model: BehaviourClusterer
    algorithm: str
    k: int
    scores: pd.DataFrame  # per candidate: algorithm, k, calinski_harabasz, silhouette, davies_bouldin, bic, ...
    holdout_users: list[str]
    holdout_confidence: float
    training_frame: pd.DataFrame
    assignments: pd.DataFrame  # user_id, cluster_id, cluster_name, confidence, events, is_low_data
    profiles: pd.DataFrame  # one row per cluster id: users, share, confidence, low-data share and mean features
    matched_to_previous: dict[int, float] = field(default_factory=dict)  # stable id -> centroid distance


def in_holdout(user_ids: pd.Series, share: float) -> np.ndarray:
    """A fixed share of users by hash of their id, so the same user stays in (or out of) the holdout."""

    def bucket(user_id: str) -> float:
        return int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    return np.array([bucket(str(u)) < share for u in user_ids])


@dataclass
class _Fit:
    labels: np.ndarray
    rate_centroids: np.ndarray
    mix_centroids: np.ndarray


def _profiles(space: _Space, labels: np.ndarray, k: int, population: np.ndarray, previous: _Fit | None) -> _Fit:
    """Each cluster's mean log rates, and its mix profile at full history: per column, the members' shrunk shares
    with the population's part taken out, over the members' total weight (a member with no history adds nothing)."""
    rate_centroids = np.empty((k, space.rates.shape[1]))
    mix_centroids = np.empty((k, space.shares.shape[1]))
    for j in range(k):
        members = labels == j
        if not members.any():  # an emptied cluster keeps its last profile
            rate_centroids[j] = previous.rate_centroids[j] if previous else space.rates.mean(axis=0)
            mix_centroids[j] = previous.mix_centroids[j] if previous else population
            continue
        rate_centroids[j] = space.rates[members].mean(axis=0)
        weight = space.weights[members].sum(axis=0)
        own = (space.shares[members] - (1 - space.weights[members]) * population).sum(axis=0)
        mix_centroids[j] = np.where(weight > 1e-9, own / np.maximum(weight, 1e-9), population)
    return _Fit(labels, rate_centroids, np.clip(mix_centroids, 0.0, 1.0))


def _refine(
    space: _Space,
    labels: np.ndarray,
    k: int,
    population: np.ndarray,
    scales: tuple[np.ndarray, np.ndarray],
    max_iterations: int,
) -> _Fit:
    """Alternate profiles and history-aware assignment until no user moves (a K-Means whose distance knows how
    much history each user has)."""
    fit = _profiles(space, labels, k, population, None)
    for _ in range(max_iterations):
        moved = _distances(space, fit.rate_centroids, fit.mix_centroids, population, *scales).argmin(axis=1)
        if np.array_equal(moved, fit.labels):
            break
        fit = _profiles(space, moved, k, population, fit)
    return fit


def _subset(rows: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of at most `limit` of `rows` rows, drawn at random (all of them when limit is 0)."""
    if limit <= 0 or rows <= limit:
        return np.arange(rows)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def _initial_labels(algorithm: str, k: int, z: np.ndarray, random_state: int) -> tuple[np.ndarray, float]:
    """Starting clusters from K-Means, or a Gaussian mixture on the leading principal components; the mixture's
    BIC (NaN for K-Means)."""
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(z), float("nan")
    reduced = PCA(n_components=0.9, random_state=random_state).fit_transform(z)
    mixture = GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=random_state)
    return mixture.fit(reduced).predict(reduced), float(mixture.bic(reduced))


def select(scores: pd.DataFrame) -> pd.Series:
    """The chosen candidate. At each k, the start (K-Means or mixture) whose refined clustering has the smaller
    history-aware within-cluster distance: both are local optima of that one objective, and the lower is the better
    fit. Across k, the highest Calinski-Harabasz index (its k penalty keeps a cluster that only splits another from
    winning, where the silhouette keeps rising with k); ties to the higher mean confidence."""
    best_start = scores.sort_values(["k", "within_distance"], kind="stable").groupby("k", as_index=False).head(1)
    ranked = best_start.sort_values(["calinski_harabasz", "confidence"], ascending=False, kind="stable")
    return ranked.iloc[0]


def name_clusters(profile: pd.DataFrame, centre: pd.Series, scale: pd.Series) -> dict[int, str]:
    """Readable names: each cluster's standardised profile against the name signatures (columns it has), each
    name used once; a cluster no signature fits is named by its two most distinctive columns."""
    z = (profile - centre) / scale.replace(0, 1)
    signatures = np.array([[sig.get(c, 0.0) for c in profile.columns] for sig in NAME_SIGNATURES.values()])
    norms = np.linalg.norm(signatures, axis=1, keepdims=True)
    fit = z.to_numpy() @ (signatures / np.where(norms > 0, norms, 1)).T
    rows, cols = linear_sum_assignment(-fit)
    names = {int(profile.index[r]): list(NAME_SIGNATURES)[c] for r, c in zip(rows, cols, strict=True) if fit[r, c] > 0}
    for cluster_id, row in z.iterrows():
        if int(cluster_id) not in names:
            top = row.sort_values(ascending=False).index[:2]
            label = " and ".join(str(c).rsplit(":", 1)[-1] for c in top)
            names[int(cluster_id)] = f"more {label} ({cluster_id})"
    return names


def keep_previous_names(names: dict[int, str], previous: dict[int, str], matched: set[int]) -> dict[int, str]:
    """A cluster matched to the champion's keeps the champion's name; a new cluster whose name is taken by it is
    named after its id instead."""
    kept = {i: previous[i] for i in matched if i in names and i in previous}
    out = {}
    for cluster_id, name in names.items():
        if cluster_id in kept:
            out[cluster_id] = kept[cluster_id]
        elif name in kept.values():
            out[cluster_id] = f"segment {cluster_id}"
        else:
            out[cluster_id] = name
    return out


def match_to_previous(
    new: pd.DataFrame, previous: pd.DataFrame | None, scale: pd.Series
) -> tuple[dict[int, int], dict[int, float]]:
    """Stable ids: Hungarian matching of the new clusters' profiles to the previous model's on the columns both
    have (standardised by the new model's scale); matched clusters keep the old id, the rest get ids after the
    largest one used so far. `new` is indexed 0..k-1."""
    k = len(new)
    common = [] if previous is None else [c for c in new.columns if c in previous.columns]
    if previous is None or previous.empty or not common:
        return {i: i + 1 for i in range(k)}, {}
    a = (new[common] / scale[common].replace(0, 1)).to_numpy()
    b = (previous[common] / scale[common].replace(0, 1)).to_numpy()
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
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
    features: pd.DataFrame,
    population: pd.Series,
    params: ClusterParams | None = None,
    previous: BehaviourClusterer | None = None,
) -> ClusteringResult:
    """Fit every candidate (algorithm x k) on the users outside the holdout (at most `params.fit_users` of them),
    choose one, refine it on every training user, give its clusters stable ids and names, and assign every user
    with a confidence."""
    params = params or ClusterParams()
    if len(features) < params.min_users:
        raise NotEnoughData(f"{len(features)} users have activity; clustering needs {params.min_users}")
    mix = tuple(c for c in mix_columns(features) if c in population.index)
    centre = population.reindex(list(mix)).to_numpy(float)
    holdout = in_holdout(features["user_id"], params.holdout_share)
    train = features[~holdout].reset_index(drop=True)
    space = _space(train, RATE_FEATURES, mix, centre)
    stacked = np.column_stack([space.rates, space.shares])
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    if np.allclose(std, 0):
        raise NotEnoughData("every user has the same behaviour; there is nothing to cluster")
    std = np.where(std > 0, std, 1.0)
    n_rates = len(RATE_FEATURES)
    scales = (std[:n_rates], std[n_rates:])
    z = (stacked - mean) / std
    k_max = min(params.k_max, len(train) // 10)
    if k_max < max(params.k_min, 2):
        raise NotEnoughData(f"{len(train)} training users are too few for {params.k_min} or more clusters")

    rng = np.random.default_rng(params.random_state)
    fitted = _subset(len(train), params.fit_users, rng)
    fit_space = _Space(space.rates[fitted], space.shares[fitted], space.weights[fitted])
    sample = np.sort(rng.choice(len(fitted), size=min(params.selection_rows, len(fitted)), replace=False))
    sample_space = _Space(fit_space.rates[sample], fit_space.shares[sample], fit_space.weights[sample])
    fit_z = z[fitted]
    rows, fits = [], {}
    for algorithm in ALGORITHMS:
        for k in range(params.k_min, k_max + 1):
            labels, bic = _initial_labels(algorithm, k, fit_z, params.random_state)
            fit = _refine(fit_space, labels, k, centre, scales, params.max_iterations)
            within = _distances(fit_space, fit.rate_centroids, fit.mix_centroids, centre, *scales).min(axis=1).sum()
            confidence = confidence_of(_distances(sample_space, fit.rate_centroids, fit.mix_centroids, centre, *scales))
            labels, points = fit.labels[sample], fit_z[sample]
            separated = len(set(labels.tolist())) > 1
            rows.append(
                {
                    "algorithm": algorithm,
                    "k": k,
                    "within_distance": float(within),
                    # cheap enough on every fitted user, and its margins between k are small: no sampling noise
                    "calinski_harabasz": float(calinski_harabasz_score(fit_z, fit.labels)) if separated else 0.0,
                    "silhouette": float(silhouette_score(points, labels)) if separated else -1.0,
                    "davies_bouldin": float(davies_bouldin_score(points, labels)) if separated else np.inf,
                    "bic": bic,
                    "confidence": float(confidence.mean()),
                    "clusters_used": len(set(labels.tolist())),
                }
            )
            fits[(algorithm, k)] = fit
    scores = pd.DataFrame(rows)
    chosen = select(scores)
    algorithm, k = str(chosen["algorithm"]), int(chosen["k"])
    fit = fits[(algorithm, k)]
    if len(fitted) < len(train):  # the chosen profiles, refined on every training user
        start = _distances(space, fit.rate_centroids, fit.mix_centroids, centre, *scales).argmin(axis=1)
        fit = _refine(space, start, k, centre, scales, params.max_iterations)

    columns = [*RATE_FEATURES, *mix]
    profile = pd.DataFrame(np.column_stack([fit.rate_centroids, fit.mix_centroids]), columns=columns)
    scale = pd.Series(std, index=columns)
    previous_profile = None if previous is None else previous.centroid_frame()
    id_map, distances = match_to_previous(profile, previous_profile, scale)
    order = sorted(range(k), key=lambda i: id_map[i])
    profile.index = pd.Index([id_map[i] for i in range(k)], name="cluster_id")
    names = name_clusters(profile, pd.Series(np.concatenate([mean[:n_rates], centre]), index=columns), scale)
    if previous is not None:
        names = keep_previous_names(names, previous.names, set(distances))
    model = BehaviourClusterer(
        rate_features=RATE_FEATURES,
        mix_features=mix,
        population=centre,
        rate_mean=mean[:n_rates],
        rate_scale=scales[0],
        mix_scale=scales[1],
        rate_centroids=fit.rate_centroids[order],
        mix_centroids=fit.mix_centroids[order],
        cluster_ids=tuple(id_map[i] for i in order),
        names=names,
        low_data_events=params.low_data_events,
    )

    assignments = model.assign(features)
    held_out = features[holdout]
    return ClusteringResult(
        model=model,
        algorithm=algorithm,
        k=k,
        scores=scores,
        holdout_users=held_out["user_id"].tolist(),
        holdout_confidence=holdout_confidence(model, held_out),
        training_frame=train[["user_id", MIX_EVENTS, *model.features, *_weight_columns(train, mix)]],
        assignments=assignments,
        profiles=cluster_profiles(features, assignments, model),
        matched_to_previous=distances,
    )


def _weight_columns(frame: pd.DataFrame, mix: tuple[str, ...]) -> list[str]:
    return sorted({weight_column(dimension_of(c)) for c in mix} & set(frame.columns))


def holdout_confidence(model: BehaviourClusterer, holdout: pd.DataFrame) -> float:
    """Mean assignment confidence of the holdout users under a model: how clearly it separates users it was not
    fitted on (the champion gate compares models by it)."""
    if len(holdout) < 3:
        return float("nan")
    return float(confidence_of(model.distances(holdout)).mean())


def cluster_profiles(features: pd.DataFrame, assignments: pd.DataFrame, model: BehaviourClusterer) -> pd.DataFrame:
    """Per cluster: size, share of users, mean confidence, share resting on too little data, and the cluster's
    profile (mean rates of its members and its mix shares at full history)."""
    joined = assignments.assign(**{c: features[c].to_numpy(float) for c in RATE_FEATURES})
    grouped = joined.groupby("cluster_id")
    profile = pd.DataFrame(
        {
            "cluster_name": grouped["cluster_name"].first(),
            "users": grouped.size(),
            "confidence": grouped["confidence"].mean(),
            "low_data_share": grouped["is_low_data"].mean(),
            **{c: grouped[c].mean() for c in RATE_FEATURES},
        }
    )
    profile.insert(2, "share_of_users", profile["users"] / profile["users"].sum())
    mix = model.centroid_frame()[list(model.mix_features)]
    return profile.join(mix, how="left").reset_index()


# Bands of history the agreement with planted personas is reported by: (metric suffix, fewest, most active days)
HISTORY_BANDS: tuple[tuple[str, int, int | None], ...] = (("1_day", 1, 1), ("2_7_days", 2, 7), ("8_plus_days", 8, None))


def planted_agreement(assignments: pd.DataFrame, features: pd.DataFrame, planted: pd.DataFrame) -> dict[str, float]:
    """Adjusted Rand index of the clusters against planted personas (`planted`: user_id, persona; the demo
    generator's truth), over all users and by band of active days; with the number of users each rests on."""
    from sklearn.metrics import adjusted_rand_score

    joined = assignments[["user_id", "cluster_id"]].merge(planted[["user_id", "persona"]], on="user_id")
    joined = joined.merge(features[["user_id", "active_days_total"]], on="user_id")
    out: dict[str, float] = {}
    bands = [("all", 1, None), *HISTORY_BANDS]
    for name, low, high in bands:
        days = joined["active_days_total"]
        rows = joined[(days >= low) & (days <= high if high is not None else days >= low)]
        out[f"ari_planted_{name}"] = (
            float(adjusted_rand_score(rows["persona"], rows["cluster_id"])) if len(rows) > 1 else float("nan")
        )
        out[f"users_planted_{name}"] = float(len(rows))
    return out
