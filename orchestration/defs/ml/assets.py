"""Training (when due), scoring with the champions, and the registry as a table.

Training assets run in every full refresh but only train when it is due: no champion yet, a run started by the
weekly schedule or the drift sensor (run tag ml/train), a drift mark on the registered model, or a champion
trained on data more than max_champion_age_days older than today's as_of. Otherwise they record why not.
Scoring always loads models:/<name>@champion.
"""

from collections.abc import Callable

import dagster as dg
import duckdb
import pandas as pd

from ingestion.markup import md_frame
from ml.features import (
    NotEnoughData,
    load_churn_snapshots,
    load_cluster_inputs,
    load_product_interactions,
    load_user_features,
    load_user_segments,
)
from ml.settings import CHURN_MODEL, CLUSTER_MODEL, RECOMMENDATION_MODEL, using
from ml.warehouse import empty_frame, replace_table
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import FOLLOW_UP, SLOW, tier
from settings import MLSettings
from stores.schema import connect

FEATURES = dg.AssetKey(["marts", "ml_user_features"])
MIX = dg.AssetKey(["marts", "ml_user_mix"])
# the demo generator's ground truth (demo_events.truth): where it exists the clustering is measured against it
PLANTED_PERSONAS = "demo_truth/users.parquet"
SNAPSHOTS = dg.AssetKey(["marts", "ml_churn_snapshots"])
CLUSTER_MODEL_KEY = dg.AssetKey(["ml", "cluster_model"])
CHURN_MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
USER_CLUSTERS = dg.AssetKey(["ml", "user_clusters"])
CHURN_SCORES = dg.AssetKey(["ml", "churn_scores"])
MODEL_METRICS = dg.AssetKey(["ml", "model_metrics"])
INTERACTIONS = dg.AssetKey(["marts", "ml_product_interactions"])
RECOMMENDATION_MODEL_KEY = dg.AssetKey(["ml", "recommendation_model"])
RECOMMENDATIONS = dg.AssetKey(["ml", "recommendations"])
POPULAR_PRODUCTS = dg.AssetKey(["ml", "popular_products"])
TRAIN_TAG = "ml/train"


def read_frame(warehouse: WarehouseResource, load: Callable) -> pd.DataFrame:
    """A feature table read on a read-only connection that is closed before any training starts."""
    with connect(str(warehouse.warehouse_path), read_only=True) as con:
        return load(con)


def training_reasons(
    *,
    requested_by: str | None,
    champion: str | None,
    drift_mark: str | None,
    champion_as_of: pd.Timestamp | None,
    as_of: pd.Timestamp,
    max_age_days: float,
) -> list[str]:
    """Why a model should be trained in this run (empty: keep the champion)."""
    reasons = []
    if requested_by:
        reasons.append(f"requested by {requested_by}")
    if champion is None:
        reasons.append("no champion yet")
    if drift_mark:
        reasons.append(f"marked for retraining: {drift_mark}")
    if champion is not None and champion_as_of is not None:
        age = (as_of - champion_as_of) / pd.Timedelta(days=1)
        if age > max_age_days:
            reasons.append(f"champion v{champion} was trained on data {age:.1f} days older than as_of")
    return reasons


def _requested_by(context: dg.AssetExecutionContext) -> str | None:
    tags = context.run.tags
    if tags.get(TRAIN_TAG) != "true":
        return None
    return tags.get("dagster/schedule_name") or tags.get("dagster/sensor_name") or f"run tag {TRAIN_TAG}"


# MLflow and scikit-learn take seconds to import: ml.tracking and ml.training are imported when an asset runs,
# not when the code location loads.


def _due(context: dg.AssetExecutionContext, name: str, as_of: pd.Timestamp, settings: MLSettings) -> list[str]:
    from ml.tracking import champion_as_of, champion_version, client, retraining_requested

    return training_reasons(
        requested_by=_requested_by(context),
        champion=champion_version(client(), name),
        drift_mark=retraining_requested(name),
        champion_as_of=champion_as_of(name),
        as_of=as_of,
        max_age_days=settings.max_champion_age_days,
    )


def _kept(name: str, context: dg.AssetExecutionContext, reason: str) -> dg.MaterializeResult:
    from ml.tracking import champion_version, client, ui_url

    context.log.info(reason)
    version = champion_version(client(), name)
    return dg.MaterializeResult(
        metadata={
            "trained": False,
            "reason": reason,
            "champion_version": version or "none",
            "champion_uri": f"models:/{name}@champion",
            "mlflow_ui": dg.MetadataValue.url(ui_url()),
        }
    )


def _train_when_due(
    context: dg.AssetExecutionContext,
    name: str,
    frame: pd.DataFrame,
    as_of_column: str,
    empty: str,
    ml: MLSettings,
    train: Callable,
) -> tuple[object, list[str]] | dg.MaterializeResult:
    """(the training, why it was due) when `train()` ran, else the result saying why the champion was kept."""
    if frame.empty:
        return _kept(name, context, f"skipped: {empty}")
    reasons = _due(context, name, pd.Timestamp(frame[as_of_column].max()), ml)
    if not reasons:
        return _kept(name, context, "champion is current; training is due weekly or on drift")
    try:
        training = train()
    except NotEnoughData as reason:
        return _kept(name, context, f"skipped: {reason}")
    context.log.info(training.outcome.decision)
    return training, reasons


def _published(outcome, headline: dict[str, object], reasons: list[str]) -> dict[str, object]:
    return {
        "trained": True,
        "why": "; ".join(reasons),
        **headline,
        "model_version": outcome.model_version,
        "promoted": outcome.promoted,
        "decision": outcome.decision,
        "champion_version": outcome.champion_after,
        f"candidate_{outcome.metric}": outcome.candidate_score,
        f"champion_{outcome.metric}_before": outcome.champion_score if outcome.champion_score is not None else "none",
        "mlflow_run": dg.MetadataValue.url(outcome.run_url),
        "mlflow_run_uri": f"runs:/{outcome.run_id}/model",
    }


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> dg.MetadataValue:
    """A frame as a Markdown table whose cells are escaped and cut (md_frame)."""
    return dg.MetadataValue.md(md_frame(frame.round(digits)))


@dg.asset(
    key=CLUSTER_MODEL_KEY,
    deps=[FEATURES, MIX],
    group_name="ml",
    tags=tier(SLOW),
    kinds={"python", "mlflow", "scikitlearn"},
    pool=DUCKDB_WRITER_POOL,
    description="Behavioural clustering of every user (K-Means or a Gaussian mixture refined with history-aware "
    f"assignment, k by Calinski-Harabasz) registered in MLflow as '{CLUSTER_MODEL}'; trains only when due, moves "
    "the champion alias only on a better holdout mean assignment confidence.",
)
def cluster_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    from ml.clustering import ClusterParams
    from ml.training import train_cluster_model

    with using(mlflow.section(warehouse.data_path)) as ml:
        try:
            features, population = read_frame(warehouse, load_cluster_inputs)
        except NotEnoughData as reason:  # the mix mart is not built yet
            return _kept(CLUSTER_MODEL, context, f"skipped: {reason}")
        params = ClusterParams(low_data_events=ml.cluster_low_data_events, fit_users=ml.cluster_fit_users)
        planted = read_planted_personas(warehouse)
        trained = _train_when_due(
            context, CLUSTER_MODEL, features, "cutoff_at", "the feature mart is empty", ml,
            lambda: train_cluster_model(features, population, params, planted),
        )  # fmt: skip
        if isinstance(trained, dg.MaterializeResult):
            return trained
        training, reasons = trained
        result = training.result
        headline = {
            "algorithm": result.algorithm,
            "k": result.k,
            "holdout_confidence": result.holdout_confidence,
            "low_data_users": int(result.assignments["is_low_data"].sum()),
            **{k: v for k, v in training.planted.items() if k.startswith("ari_planted_")},
            "k_selection": markdown_table(result.scores),
            "clusters": markdown_table(
                result.profiles[["cluster_id", "cluster_name", "users", "share_of_users", "confidence"]]
            ),
        }
        return dg.MaterializeResult(metadata=_published(training.outcome, headline, reasons))


def read_planted_personas(warehouse: WarehouseResource) -> pd.DataFrame | None:
    """user_id and persona from the demo generator's truth, when the data is generated (else None)."""
    path = warehouse.data_path / PLANTED_PERSONAS
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path, columns=["user_id", "persona"])
    except (OSError, ValueError, KeyError) as error:  # a truth file from another version: measure nothing
        dg.get_dagster_logger().warning(f"{path} not read ({error}); no agreement with planted personas")
        return None


@dg.asset(
    key=CHURN_MODEL_KEY,
    deps=[SNAPSHOTS],
    group_name="ml",
    tags=tier(SLOW),
    kinds={"python", "mlflow", "scikitlearn"},
    pool=DUCKDB_WRITER_POOL,
    description="Churn classifier (logistic regression, random forest or gradient boosting by time-aware CV, "
    f"calibrated) registered in MLflow as '{CHURN_MODEL}'; trains only when due, moves the champion alias only "
    "on a better time-holdout ROC AUC.",
)
def churn_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    from ml.churn import ChurnParams
    from ml.training import train_churn_model

    with using(mlflow.section(warehouse.data_path)) as ml:
        snapshots = read_frame(warehouse, load_churn_snapshots)
        params = ChurnParams(importance_rows=ml.churn_importance_rows)
        trained = _train_when_due(
            context, CHURN_MODEL, snapshots, "as_of", "no churn snapshots (no activity before any past cutoff)", ml,
            lambda: train_churn_model(snapshots, params),
        )  # fmt: skip
        if isinstance(trained, dg.MaterializeResult):
            return trained
        training, reasons = trained
        result = training.result
        cv = result.cv_scores.groupby("family", as_index=False)[["roc_auc", "pr_auc"]].mean()
        headline = {
            "model_family": result.model_family,
            **{f"holdout_{k}": v for k, v in result.holdout_metrics.items()},
            "threshold": result.threshold,
            "cv_by_family": markdown_table(cv),
            "top_features": markdown_table(result.importance.head(8)),
        }
        return dg.MaterializeResult(metadata=_published(training.outcome, headline, reasons))


def load_recommendation_inputs(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The product interactions and each user's segment (cluster name)."""
    return load_product_interactions(con), load_user_segments(con)


@dg.asset(
    key=RECOMMENDATION_MODEL_KEY,
    deps=[INTERACTIONS, USER_CLUSTERS],
    group_name="ml",
    tags=tier(SLOW),
    kinds={"python", "mlflow", "scipy"},
    pool=DUCKDB_WRITER_POOL,
    description="Product recommendations: item-item collaborative filtering (cosine similarity of who viewed, added "
    "and ordered products) with popularity within the user's cluster for users without history, judged on a "
    f"14-day time holdout against a popularity baseline; registered in MLflow as '{RECOMMENDATION_MODEL}'; trains "
    "only when due, moves the champion alias only on a better holdout precision@10.",
)
def recommendation_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    from ml.recommendations import RecommendationParams
    from ml.training import train_recommendation_model

    with using(mlflow.section(warehouse.data_path)) as ml:
        try:
            interactions, segments = read_frame(warehouse, load_recommendation_inputs)
        except NotEnoughData as reason:
            return _kept(RECOMMENDATION_MODEL, context, f"skipped: {reason}")
        params = RecommendationParams(max_products=ml.recommendation_max_products)
        trained = _train_when_due(
            context, RECOMMENDATION_MODEL, interactions, "event_at", "no product interactions yet", ml,
            lambda: train_recommendation_model(interactions, segments, params),
        )  # fmt: skip
        if isinstance(trained, dg.MaterializeResult):
            return trained
        training, reasons = trained
        metrics = training.metrics
        headline = {
            "holdout_precision_at_10": metrics["holdout_precision_at_10"],
            "baseline_precision_at_10": metrics["baseline_precision_at_10"],
            "precision_lift": metrics["precision_lift"],
            "holdout_recall_at_10": metrics["holdout_recall_at_10"],
            "holdout_coverage": metrics["holdout_coverage"],
            "test_users": int(metrics["test_users"]),
            "products": int(metrics["products"]),
            "holdout_comparison": markdown_table(
                training.comparison.pivot(index="metric", columns="model", values="value").reset_index(), 4
            ),
        }
        return dg.MaterializeResult(metadata=_published(training.outcome, headline, reasons))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RECOMMENDATIONS,
            deps=[INTERACTIONS, USER_CLUSTERS, RECOMMENDATION_MODEL_KEY],
            group_name="ml",
            tags=tier(FOLLOW_UP),
            kinds={"python", "duckdb"},
            description=f"ml.recommendations: the top products of every user from models:/{RECOMMENDATION_MODEL}"
            "@champion (ML_RECOMMENDATIONS_PER_USER each, ranked, with score and source: item_item from the "
            "user's history, segment_popularity without one); the profile API serves them.",
        ),
        dg.AssetSpec(
            POPULAR_PRODUCTS,
            deps=[RECOMMENDATION_MODEL_KEY],
            group_name="ml",
            tags=tier(FOLLOW_UP),
            kinds={"python", "duckdb"},
            description="ml.popular_products: the products most users of each cluster touched, and of all users "
            "(segment '(all)'), as the champion recommendation model learned them: what the profile API serves "
            "a user the batch has no recommendations for yet.",
        ),
    ],
    pool=DUCKDB_WRITER_POOL,
)
def recommendations(context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource):
    from ml.training import score_recommendations

    with using(mlflow.section(warehouse.data_path)) as ml:
        try:
            interactions, segments = read_frame(warehouse, load_recommendation_inputs)
            frame, popular, version = score_recommendations(interactions, segments, ml.recommendations_per_user)
        except NotEnoughData as reason:
            context.log.warning(f"ml.recommendations and ml.popular_products left empty: {reason}")
            for table, key in (("recommendations", RECOMMENDATIONS), ("popular_products", POPULAR_PRODUCTS)):
                rows = _write(warehouse, table, empty_frame(table))
                yield dg.MaterializeResult(asset_key=key, metadata={"skipped": str(reason), "dagster/row_count": rows})
            return
    rows = _write(warehouse, "recommendations", frame)
    by_source = frame.groupby("source", as_index=False).agg(users=("user_id", "nunique"), rows=("user_id", "size"))
    yield dg.MaterializeResult(
        asset_key=RECOMMENDATIONS,
        metadata={
            "dagster/row_count": rows,
            "model_version": version,
            "users": int(frame["user_id"].nunique()),
            "by_source": markdown_table(by_source),
            "model_uri": f"models:/{RECOMMENDATION_MODEL}@champion",
        },
    )
    popular_rows = _write(warehouse, "popular_products", popular)
    yield dg.MaterializeResult(
        asset_key=POPULAR_PRODUCTS,
        metadata={
            "dagster/row_count": popular_rows,
            "model_version": version,
            "segments": int(popular["segment"].nunique()),
            "top_overall": markdown_table(popular[popular["segment"] == "(all)"].head(10)),
        },
    )


def _write(warehouse: WarehouseResource, table: str, frame: pd.DataFrame) -> int:
    with connect(str(warehouse.warehouse_path)) as con:
        return replace_table(con, table, frame)


def _score(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    table: str,
    scorer: Callable,
    load: Callable = load_user_features,
) -> tuple[pd.DataFrame, str, int] | dg.MaterializeResult:
    """Score the feature mart (read by `load`) with the champion (`scorer`) into ml.<table>: (rows, model version,
    row count), or, when there is too little data, ml.<table> emptied and the result saying why."""
    try:
        features = read_frame(warehouse, load)
        frame, version = scorer(features)
    except NotEnoughData as reason:
        context.log.warning(f"ml.{table} left empty: {reason}")
        rows = _write(warehouse, table, empty_frame(table))
        return dg.MaterializeResult(metadata={"skipped": str(reason), "dagster/row_count": rows})
    return frame, version, _write(warehouse, table, frame)


@dg.asset(
    key=USER_CLUSTERS,
    deps=[FEATURES, MIX, CLUSTER_MODEL_KEY],
    group_name="ml",
    tags=tier(FOLLOW_UP),
    kinds={"python", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description=f"ml.user_clusters: every user's cluster from models:/{CLUSTER_MODEL}@champion, with its "
    "confidence, the events it rests on and a flag when they are too few.",
)
def user_clusters(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    from ml.training import assign_clusters

    with using(mlflow.section(warehouse.data_path)):
        scored = _score(
            context, warehouse, "user_clusters", lambda inputs: assign_clusters(inputs[0]), load_cluster_inputs
        )
    if isinstance(scored, dg.MaterializeResult):
        return scored
    frame, version, rows = scored
    sizes = frame.groupby(["cluster_id", "cluster_name"], as_index=False).agg(
        users=("user_id", "size"), confidence=("confidence", "mean"), low_data_users=("is_low_data", "sum")
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_version": version,
            "clusters": markdown_table(sizes),
            "model_uri": f"models:/{CLUSTER_MODEL}@champion",
        }
    )


@dg.asset(
    key=CHURN_SCORES,
    deps=[FEATURES, CHURN_MODEL_KEY],
    group_name="ml",
    tags=tier(FOLLOW_UP),
    kinds={"python", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description=f"ml.churn_scores: churn probability and risk tier of every user active in the 30 days before "
    f"as_of, from models:/{CHURN_MODEL}@champion.",
)
def churn_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    from ml.training import score_churn

    with using(mlflow.section(warehouse.data_path)):
        scored = _score(context, warehouse, "churn_scores", score_churn)
    if isinstance(scored, dg.MaterializeResult):
        return scored
    frame, version, rows = scored
    tiers = frame.groupby("risk_tier", as_index=False).agg(
        users=("user_id", "size"), mean_probability=("churn_probability", "mean")
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_version": version,
            "risk_tiers": markdown_table(tiers),
            "mean_churn_probability": float(frame["churn_probability"].mean()) if rows else 0.0,
            "model_uri": f"models:/{CHURN_MODEL}@champion",
        }
    )


@dg.asset(
    key=MODEL_METRICS,
    deps=[CLUSTER_MODEL_KEY, CHURN_MODEL_KEY, RECOMMENDATION_MODEL_KEY],
    group_name="ml",
    tags=tier(FOLLOW_UP),
    kinds={"python", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="ml.model_metrics: one row per registered model version and holdout metric, with the champion "
    "flag (read from the MLflow registry).",
)
def model_metrics_table(warehouse: WarehouseResource, mlflow: MLflowResource) -> dg.MaterializeResult:
    from ml.tracking import model_metrics

    with using(mlflow.section(warehouse.data_path)):
        frame = model_metrics()
        rows = _write(warehouse, "model_metrics", frame)
        champions = frame[frame["is_champion"].astype(bool)].drop_duplicates("model_name")[
            ["model_name", "model_version"]
        ]
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "champions": markdown_table(champions)})
