"""Our own small MLflow resource (not dagster-mlflow): where tracking goes and the thresholds of the ML assets,
one field per setting of the ML section (see docs/settings.md), read through `dg.EnvVar`."""

from dataclasses import replace
from pathlib import Path

import dagster as dg

from orchestration.settings_resources import SettingsFields, env_fields, settings_resource_base
from settings import MLSettings

_MLflowFields = settings_resource_base("_MLflowFields", MLSettings)


class MLflowResource(SettingsFields, _MLflowFields):
    """MLflow tracking/registry URI (empty: sqlite at $DATA_DIR/mlflow.db), the UI address for links, the PSI
    over which drift marks a model for retraining, how old (in days of data) a champion may get, the actions below
    which a user's cluster is flagged as resting on too little data, and the retraining cooldown."""

    def section(self, data_dir: Path) -> MLSettings:
        """The ML section for the warehouse under `data_dir`, to hand to ml/ with `ml.settings.using(...)`."""
        return replace(self.settings().ml, data_dir=data_dir)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"mlflow": MLflowResource(**env_fields(MLflowResource))})
