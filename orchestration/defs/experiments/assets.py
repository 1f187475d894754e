"""Factorial experiments: a logistic regression of conversion on the factors and their interaction, per
experiment whose seed row names factors, written to ml.experiment_factorial_effects and logged to MLflow."""

import dagster as dg
import pandas as pd

from ingestion.markup import Markdown, md_table, plain_text
from ml.experiments import EFFECT_COLUMNS, FactorialResult, fit_factorial, log_to_mlflow
from ml.settings import using
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import SLOW, tier
from stores.schema import connect, ensure

EFFECTS = dg.AssetKey(["ml", "experiment_factorial_effects"])
VARIANTS = dg.AssetKey(["intermediate", "int_experiment_variants"])
EFFECTS_TABLE = "ml.experiment_factorial_effects"


def effects_markdown(effects: pd.DataFrame) -> str:
    """Experiment ids and effect names (made of variant names) are client values: escaped and cut."""
    rows = (
        [r.experiment_id, r.effect, Markdown(f"{r.log_odds:.3f}"), Markdown(f"{r.ci_low:.3f} .. {r.ci_high:.3f}"),
         Markdown(f"{r.odds_ratio:.2f}"), Markdown(f"{r.p_value:.4f}")]
        for r in effects.itertuples()
    )  # fmt: skip
    return md_table(["experiment", "effect", "log-odds", "95% CI", "odds ratio", "p"], rows, align="llrlrr")


@dg.asset(
    key=EFFECTS,
    deps=[VARIANTS],
    group_name="experiments",
    tags=tier(SLOW),
    kinds={"python", "statsmodels", "mlflow"},
    pool=DUCKDB_WRITER_POOL,
    description="Main effects and interactions of factorial experiments (seed experiments, column factors) on "
    "conversion: full factorial logistic regression with Wald 95% intervals and p-values (ml/experiments.py), "
    "one MLflow run per experiment with its input cells. A cell whose variant name does not fit the design is left "
    "out with its reason (metadata cells_left_out, MLflow tag cells_left_out), never an error.",
)
def experiment_factorial_effects(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MLflowResource
):
    with connect(str(warehouse.warehouse_path), read_only=True) as con:
        cells = con.execute(
            "select experiment_id, variant, users, conversions, factors, control_variant, planned_split "
            "from intermediate.int_experiment_variants where factors is not null order by experiment_id, variant"
        ).df()
    frames, skipped, runs, left_out = [], {}, {}, {}
    for experiment_id, group in cells.groupby("experiment_id", sort=True):
        first = group.iloc[0]
        try:
            result = fit_factorial(
                experiment_id, first["factors"], first["control_variant"], group,
                planned_split=first["planned_split"],
            )  # fmt: skip
        except Exception as error:  # one experiment's fit must not fail the others (or the asset)
            result = FactorialResult(None, group[["variant", "users", "conversions"]],
                                     skipped=f"fit failed: {type(error).__name__}: {error}")  # fmt: skip
        with using(mlflow.section(warehouse.data_path)):
            runs[experiment_id] = log_to_mlflow(result, experiment_id=experiment_id)
        if result.left_out:
            left_out[experiment_id] = result.left_out
            context.log.warning(
                f"{plain_text(experiment_id)}: {len(result.left_out)} cell(s) left out of the fit: "
                f"{plain_text(result.left_out_text(), 2000)}"
            )
        if result.skipped:
            skipped[experiment_id] = result.skipped
            context.log.warning(f"{plain_text(experiment_id)}: not fitted: {plain_text(result.skipped, 2000)}")
        else:
            frames.append(result.effects.assign(mlflow_run_id=runs[experiment_id]))
    effects = pd.concat(frames) if frames else pd.DataFrame(columns=[*EFFECT_COLUMNS, "mlflow_run_id"])
    with connect(str(warehouse.warehouse_path)) as con:
        ensure(con, EFFECTS_TABLE)
        con.execute("begin transaction")
        con.execute("delete from ml.experiment_factorial_effects")
        if len(effects):
            con.register("effects_frame", effects)
            con.execute("insert into ml.experiment_factorial_effects by name select * from effects_frame")
        con.execute("commit")
    reason = plain_text("; ".join(f"{k}: {v}" for k, v in skipped.items()), 2000)
    if cells.empty:
        reason = "no experiment in seed experiments names factors, or none has exposures yet"
    return dg.MaterializeResult(
        metadata={
            "experiments_fitted": len(frames),
            "skipped": reason or "none",
            # cells whose variant name does not fit the design (client values): left out, never an error
            "cells_left_out": sum(len(cells) for cells in left_out.values()),
            "cells_left_out_reasons": dg.MetadataValue.json(
                {
                    plain_text(experiment): {plain_text(v): plain_text(why) for v, why in sorted(cells.items())[:20]}
                    for experiment, cells in left_out.items()
                }
            ),
            "effects": dg.MetadataValue.md(effects_markdown(effects) if len(effects) else "nothing fitted"),
            "mlflow_runs": dg.MetadataValue.json(runs),
            "dagster/row_count": len(effects),
        }
    )
