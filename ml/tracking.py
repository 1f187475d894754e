"""MLflow helpers: one run per training, the registry's `champion` alias moved only by a better holdout score,
champions loaded back by alias, retraining requests as registry tags, and the registry as a metrics table.

Models are saved with skops, not pickle, and loaded here with skops.io.load and TRUSTED_TYPES, a list in this code:
a file (or a `champion` alias moved to one) holding any other type is refused before any object is built, so
whoever can write the artifact store or move an alias cannot run code in the worker. MLflow's own loaders are not
used: they would take the format and the trusted list from the model's MLmodel file, which is data an attacker
writes too. Champions saved with cloudpickle by earlier versions are refused the same way; training is due while a
model has no loadable champion (retraining_requested says why).
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import mlflow.artifacts
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from skops.io.exceptions import UntrustedTypesFoundException

from ml.features import DataVersion
from ml.settings import CHURN_MODEL, CLUSTER_MODEL, RECOMMENDATION_MODEL, artifact_root, current, tracking_uri
from stores.schema import TABLES

__all__ = ["CHURN_MODEL", "CLUSTER_MODEL", "RECOMMENDATION_MODEL"]
CHAMPION = "champion"
RETRAIN_TAG = "retrain_requested"
TRAINED_TAG = "last_trained_at"
REFERENCE_ARTIFACT = "data/training_features.parquet"
REFERENCE_MAX_ROWS = 50_000  # drift needs a sample of the training data, not all of it
PIP_REQUIREMENTS = [
    f"scikit-learn=={sklearn.__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
    f"skops=={skops.__version__}",
]
SKOPS_FILE = "model.skops"  # where mlflow.sklearn puts a skops model in the model's folder
# Types loaded besides those skops trusts by default (builtins, numpy and scipy arrays and ufuncs, public sklearn
# estimators): exactly what ml.clustering, ml.churn and ml.recommendations build. Code, not data: never read from a
# model's files.
TRUSTED_TYPES: tuple[str, ...] = (
    # ours: set from the file's attributes (themselves of trusted types) by BaseEstimator.__setstate__, no other
    # code runs on load; its methods only run when scoring calls them
    "ml.clustering.BehaviourClusterer",
    "ml.recommendations.ItemItemRecommender",
    # CalibratedClassifierCV's fitted parts, random forest trees and histogram gradient boosting predictors
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)

log = logging.getLogger(__name__)


def client() -> MlflowClient:
    """A client on the configured tracking and registry URI (also set as mlflow's global default).

    mlflow.set_tracking_uri and set_registry_uri also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into
    os.environ, which tracking_uri() would then take for the user's setting: a later DATA_DIR in the same process
    would still track into the first one's store. The environment is put back as it was.
    """
    uri = tracking_uri()
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ui_url() -> str:
    """Where the MLflow UI is served (setting MLFLOW_UI_URL, default http://127.0.0.1:5000, what `make dev` starts)."""
    return current().ui_url.rstrip("/")


def experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    """The experiment of one model, created on first use with its artifacts under artifact_root() when the
    tracking store is local (a tracking server decides artifact locations itself)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    local = tracking_uri().startswith(("sqlite:", "file:", "/"))
    location = (artifact_root() / name).as_uri() if local else None
    return mlflow_client.create_experiment(name, artifact_location=location)


def champion_version(mlflow_client: MlflowClient, name: str) -> str | None:
    """The registry version holding the champion alias, or None."""
    try:
        return str(mlflow_client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


class ModelRefused(Exception):
    """A registered model that is not loaded: not a skops file, or one holding types outside TRUSTED_TYPES."""


def load_model(name: str, version: str | None = None) -> object:
    """A registered model as the scikit-learn object it was logged as; the champion unless a version is given.

    Raises ModelRefused, without building any of its objects, when the model is not a skops file holding only
    trusted types.
    """
    mlflow_client = client()
    version = version or champion_version(mlflow_client, name)
    if version is None:
        raise MlflowException(f"no {name} model holds the {CHAMPION} alias")
    with tempfile.TemporaryDirectory() as tmp:
        path = _skops_file(name, version, Path(tmp))
        try:
            return skops.io.load(path, trusted=list(TRUSTED_TYPES))
        except UntrustedTypesFoundException as error:
            raise ModelRefused(_untrusted(name, version, error)) from None


def champion_refusal(name: str) -> str | None:
    """Why the champion would be refused (None: loadable, or no champion): its file is audited, not loaded."""
    mlflow_client = client()
    version = champion_version(mlflow_client, name)
    if version is None:
        return None
    key = (tracking_uri(), name, version)
    if key not in _audited:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                untrusted = set(skops.io.get_untrusted_types(file=_skops_file(name, version, Path(tmp))))
                extra = sorted(untrusted - set(TRUSTED_TYPES))
                _audited[key] = _untrusted(name, version, extra) if extra else None
            except ModelRefused as refused:
                _audited[key] = str(refused)
    return _audited[key]


_audited: dict[tuple[str, str, str], str | None] = {}  # (store, name, version) -> refusal; versions do not change


def _skops_file(name: str, version: str, folder: Path) -> Path:
    """The downloaded skops file of a model version; ModelRefused when it has none or it is no skops file."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(folder)))
    path = local / SKOPS_FILE
    if not path.is_file():
        files = sorted(p.name for p in local.iterdir())
        kind = "a pickle (saved by an earlier version)" if any(f.endswith(".pkl") for f in files) else "no skops file"
        raise ModelRefused(
            f"{name} v{version} is {kind} ({', '.join(files)}); pickles run code when loaded, so it is not loaded. "
            f"Train a new {name} model: training is due while no loadable champion exists."
        )
    if not zipfile.is_zipfile(path):
        raise ModelRefused(f"{name} v{version}: {SKOPS_FILE} is not a skops file; not loaded")
    return path


def _untrusted(name: str, version: str, types: object) -> str:
    return (
        f"{name} v{version} holds types outside ml.tracking.TRUSTED_TYPES ({types}); refused without loading it. "
        f"Train a new {name} model: training is due while no loadable champion exists."
    )


@dataclass
class PublishOutcome:
    """What one training run left in MLflow and what the champion gate decided."""

    run_id: str
    experiment_id: str
    model_version: str
    promoted: bool
    metric: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    decision: str

    @property
    def run_url(self) -> str:
        return f"{ui_url()}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    @property
    def champion_after(self) -> str | None:
        return self.model_version if self.promoted else self.champion_version


def gate(candidate: float, champion: float | None, higher_is_better: bool = True) -> bool:
    """A candidate becomes champion when there is none or it is strictly better on the holdout metric."""
    if champion is None or np.isnan(champion):
        return True
    return candidate > champion if higher_is_better else candidate < champion


def publish(
    *,
    name: str,
    model: object,
    input_example: pd.DataFrame,
    params: dict[str, object],
    metrics: dict[str, float],
    data_version: DataVersion,
    metric: str,
    candidate_score: float,
    score_champion: Callable[[object], float],
    reference: pd.DataFrame,
    figures: dict[str, Figure] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    predict_fn: str = "predict",
    higher_is_better: bool = True,
) -> PublishOutcome:
    """Log one training run (params, metrics, data version, plots, tables, a sample of the training features and
    the model with signature and input example), register the model and move `champion` to it only if it beats
    the current champion on the same holdout (`score_champion` scores the champion there); log both scores and the
    decision."""
    mlflow_client = client()
    experiment = experiment_id(mlflow_client, name)
    previous = champion_version(mlflow_client, name)
    champion_score, note = None, ""
    if previous is not None:
        try:
            champion_score = float(score_champion(load_model(name, previous)))
        except Exception as error:  # a champion that cannot score today's holdout is replaced
            note = f"; champion v{previous} could not be scored on this holdout ({error})"
            log.warning(note)
    promoted = gate(candidate_score, champion_score, higher_is_better)

    with mlflow.start_run(experiment_id=experiment, run_name=f"{name} as of {data_version.as_of}") as run:
        mlflow.log_params({**params, **data_version.as_params()})
        mlflow.set_tags({"model_name": name, "data_sha256": data_version.sha256, "data_as_of": data_version.as_of})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        for file_name, figure in (figures or {}).items():
            mlflow.log_figure(figure, f"plots/{file_name}.png")
            plt.close(figure)
        for file_name, table in (tables or {}).items():
            mlflow.log_text(table.to_csv(index=False), f"tables/{file_name}.csv")
        with tempfile.TemporaryDirectory() as tmp:
            sample = reference.sample(min(len(reference), REFERENCE_MAX_ROWS), random_state=0)
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            sample.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
        output = getattr(model, predict_fn)(input_example)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(input_example, output),
            input_example=input_example,
            registered_model_name=name,
            serialization_format="skops",
            skops_trusted_types=list(TRUSTED_TYPES),
            pip_requirements=PIP_REQUIREMENTS,
            pyfunc_predict_fn=predict_fn,
        )
        version = str(info.registered_model_version)
        if previous is None:
            decision = f"v{version} is the first {name} model: champion{note}"
        elif promoted:
            decision = (
                f"v{version} beats champion v{previous} on holdout {metric}: "
                f"{candidate_score:.4f} vs {champion_score if champion_score is not None else float('nan'):.4f}"
                f"{note}"
            )
        else:
            decision = (
                f"v{version} does not beat champion v{previous} on holdout {metric}: "
                f"{candidate_score:.4f} vs {champion_score:.4f}; champion kept"
            )
        mlflow.log_metric(f"candidate_{metric}", candidate_score)
        if champion_score is not None:
            mlflow.log_metric(f"champion_{metric}", champion_score)
        mlflow.set_tags(
            {"promoted": str(promoted).lower(), "decision": decision, "champion_before": previous or "none"}
        )
        for key, value in {
            "holdout_metric": metric,
            f"holdout_{metric}": f"{candidate_score:.6f}",
            "promoted": str(promoted).lower(),
            "decision": decision,
        }.items():
            mlflow_client.set_model_version_tag(name, version, key, value)
        if promoted:
            mlflow_client.set_registered_model_alias(name, CHAMPION, version)
        trained_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        mlflow_client.set_registered_model_tag(name, TRAINED_TAG, trained_at)
        clear_retraining(mlflow_client, name)
    return PublishOutcome(
        run.info.run_id, experiment, version, promoted, metric, candidate_score, previous, champion_score, decision
    )


def champion_reference(name: str) -> tuple[str, pd.DataFrame] | None:
    """The champion's version and the sample of its training features logged with it (for drift)."""
    mlflow_client = client()
    version = champion_version(mlflow_client, name)
    if version is None:
        return None
    run_id = mlflow_client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow_client.download_artifacts(run_id, REFERENCE_ARTIFACT, tmp)
        return version, pd.read_parquet(path)


def retrain_cooldown() -> pd.Timedelta:
    """Setting `ML_RETRAIN_COOLDOWN_HOURS` (default 24): after a training, drift marks the model again only this
    much later."""
    return pd.Timedelta(hours=current().retrain_cooldown_hours)


def request_retraining(name: str, reason: str) -> str | None:
    """Mark a registered model for retraining (the next training run, or the drift sensor, picks it up).

    Not within the cooldown after its last training: when a challenger trained on drifted data lost to the
    champion, training again on nearly the same data would lose again, and at every drift check. Returns None
    when marked, else why not.
    """
    mlflow_client = client()
    now = pd.Timestamp.now(tz="UTC")
    trained = mlflow_client.get_registered_model(name).tags.get(TRAINED_TAG)
    again = pd.Timestamp(trained) + retrain_cooldown() if trained else None
    if again is not None and now < again:
        return f"last trained {trained}; drift can mark it again from {again.isoformat(timespec='seconds')}"
    mlflow_client.set_registered_model_tag(name, RETRAIN_TAG, f"{reason} (marked {now.isoformat(timespec='seconds')})")
    return None


def retraining_requested(name: str) -> str | None:
    """The reason a model was marked for retraining, or why its champion cannot be loaded (training is due then,
    whatever the cooldown), or None."""
    try:
        mark = client().get_registered_model(name).tags.get(RETRAIN_TAG)
    except MlflowException:
        return None
    if mark:
        return mark
    refusal = champion_refusal(name)
    if refusal is None:
        return None
    log.warning(refusal)
    return f"no loadable champion: {refusal}"


def clear_retraining(mlflow_client: MlflowClient, name: str) -> None:
    if RETRAIN_TAG in mlflow_client.get_registered_model(name).tags:
        mlflow_client.delete_registered_model_tag(name, RETRAIN_TAG)


METRICS_COLUMNS = list(TABLES["ml.model_metrics"].column_types)  # the contract of ml.model_metrics


def model_metrics(names: tuple[str, ...] = (CLUSTER_MODEL, CHURN_MODEL, RECOMMENDATION_MODEL)) -> pd.DataFrame:
    """One row per registered model version and holdout metric (the ml.model_metrics table)."""
    mlflow_client = client()
    rows = []
    for name in names:
        try:
            versions = mlflow_client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            continue
        champion = champion_version(mlflow_client, name)
        for version in versions:
            run = mlflow_client.get_run(version.run_id)
            trained_at = pd.Timestamp(run.info.start_time, unit="ms")
            as_of = pd.to_datetime(run.data.params.get("data_as_of"), errors="coerce")
            for metric, value in sorted(run.data.metrics.items()):
                if metric.startswith("holdout_"):
                    rows.append(
                        [
                            name,
                            str(version.version),
                            str(version.version) == champion,
                            trained_at,
                            as_of,
                            metric.removeprefix("holdout_"),
                            float(value),
                            version.run_id,
                        ]
                    )
    frame = pd.DataFrame(rows, columns=METRICS_COLUMNS)
    return frame.sort_values(["model_name", "model_version", "metric"], key=_version_key, ignore_index=True)


def _version_key(column: pd.Series) -> pd.Series:
    return column.astype(int) if column.name == "model_version" else column


def champion_as_of(name: str) -> pd.Timestamp | None:
    """The as_of of the data the champion was trained on (None without a champion)."""
    mlflow_client = client()
    version = champion_version(mlflow_client, name)
    if version is None:
        return None
    run = mlflow_client.get_run(mlflow_client.get_model_version(name, version).run_id)
    value = pd.to_datetime(run.data.params.get("data_as_of"), errors="coerce")
    return None if pd.isna(value) else value
