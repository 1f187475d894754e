"""Factorial experiments: main effects and interactions of the factors on conversion, by logistic regression.

Variant names of a factorial experiment are its factors' levels joined by "+" in the order of the seed's
`factors` (e.g. tour_on+badge_off); the control variant's levels are the baselines. The model is the full
factorial logistic regression (statsmodels GLM, binomial family, logit link) fitted on the cell counts, which
gives the same maximum-likelihood estimates and Wald intervals as a per-user logit at any data size.

Variant names are client values: a cell whose name does not fit the design (not one level per factor joined by
"+", a level other than 1-64 letters, digits, "_", "-" or ".", not in the seed's planned_split when it has one,
or the warehouse's "(other unplanned)" fold row) is left out of the fit with its reason in
FactorialResult.left_out, never an exception; a malformed seed row (factors, a control that does not fit) skips
the experiment with the reason.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EFFECT_COLUMNS = [
    "experiment_id",
    "effect",
    "log_odds",
    "std_error",
    "ci_low",
    "ci_high",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "p_value",
    "users",
]


@dataclass(frozen=True)
class FactorialDesign:
    """An experiment's factors, each with its baseline level first and its other levels after."""

    experiment_id: str
    factors: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]

    def effect_names(self) -> list[str]:
        """Main effects (`factor=level`) and interactions (joined by `:`), in model order."""
        names = []
        for size in range(1, len(self.factors) + 1):
            for subset in itertools.combinations(self.factors, size):
                for levels in itertools.product(*(self.levels[f][1:] for f in subset)):
                    names.append(":".join(f"{f}={lvl}" for f, lvl in zip(subset, levels, strict=True)))
        return names


@dataclass
class FactorialResult:
    """Effects table (one row per effect), the cells it was fitted on, or the reason nothing was fitted."""

    design: FactorialDesign | None
    cells: pd.DataFrame
    effects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EFFECT_COLUMNS))
    skipped: str | None = None
    left_out: dict[str, str] = field(default_factory=dict)  # variant -> why its cell is not in the fit

    def left_out_text(self, limit: int = 10) -> str:
        """The cells left out and why, for logs, asset metadata and MLflow tags (at most `limit` named)."""
        if not self.left_out:
            return "none"
        named = [f"{variant[:60]!r}: {reason}" for variant, reason in sorted(self.left_out.items())[:limit]]
        more = len(self.left_out) - limit
        return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


FOLDED = "(other unplanned)"  # the row int_experiment_variants folds unplanned variants into
LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # a factor level: also safe in effect names and MLflow metric keys


def factor_names(factors: object) -> tuple[str, ...]:
    """The factor names of seed text `a;b` (ValueError when not 2+ distinct names)."""
    text = "" if factors is None or (isinstance(factors, float) and math.isnan(factors)) else str(factors)
    names = tuple(f.strip() for f in text.split(";") if f.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"factors must be 2+ distinct names joined by ';', got {text[:200]!r}")
    return names


def variant_problem(variant: str, factors: tuple[str, ...], planned: set[str] | None = None) -> str | None:
    """Why a variant's cell cannot be in the fit of a design with these factors, or None when it can."""
    if variant == FOLDED:
        return "variants folded by the warehouse (beyond var experiment_max_variants)"
    if planned is not None and variant not in planned:
        return "not in the seed's planned_split"
    parts = variant.split("+")
    if len(parts) != len(factors):
        return f"{len(parts)} part(s) joined by '+', the design has {len(factors)} factors {list(factors)}"
    if not all(LEVEL.fullmatch(part) for part in parts):
        return "a level is not 1-64 letters, digits, '_', '-' or '.'"
    return None


def planned_variants(split: object) -> set[str] | None:
    """Variant names of seed text `a=1;b=1` (None when empty; names are taken whatever the weights)."""
    if split is None or (isinstance(split, float) and math.isnan(split)) or not str(split).strip():
        return None
    return {part.partition("=")[0].strip() for part in str(split).split(";") if part.strip()}


def parse_design(experiment_id: str, factors: str, control_variant: str, variants: list[str]) -> FactorialDesign:
    """The design from the seed's factors text (`a;b`), the control variant and the observed variant names."""
    names = tuple(f.strip() for f in factors.split(";") if f.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            f"factorial experiment {experiment_id!r}: factors must be 2+ distinct names joined by ';', got {factors!r}"
        )
    split = {}
    for variant in [control_variant, *variants]:
        parts = variant.split("+")
        if len(parts) != len(names):
            raise ValueError(
                f"factorial experiment {experiment_id!r}: variant {variant!r} must name one level of each factor "
                f"{list(names)} joined by '+'"
            )
        split[variant] = parts
    levels = {}
    for i, factor in enumerate(names):
        baseline = split[control_variant][i]
        others = sorted({split[v][i] for v in variants} - {baseline})
        levels[factor] = (baseline, *others)
    return FactorialDesign(experiment_id, names, levels)


def design_matrix(design: FactorialDesign, variants: list[str]) -> pd.DataFrame:
    """Intercept plus one 0/1 column per effect for each variant (treatment coding)."""
    rows = []
    for variant in variants:
        level = dict(zip(design.factors, variant.split("+"), strict=True))
        row = {"intercept": 1.0}
        for name in design.effect_names():
            row[name] = float(all(level[f] == lvl for f, lvl in (part.split("=", 1) for part in name.split(":"))))
        rows.append(row)
    return pd.DataFrame(rows, index=variants)


def fit_factorial(
    experiment_id: str,
    factors: str,
    control_variant: str,
    cells: pd.DataFrame,
    min_users_per_cell: int = 30,
    planned_split: object = None,
) -> FactorialResult:
    """Fit the full factorial logit on `cells` (columns variant, users, conversions), or say why not. Cells that
    do not fit the design are left out (FactorialResult.left_out); this never raises on names or seed text."""
    cells = cells[["variant", "users", "conversions"]].sort_values("variant").reset_index(drop=True)
    cells["variant"] = cells["variant"].astype(str)
    try:
        names = factor_names(factors)
    except ValueError as error:
        return FactorialResult(None, cells, skipped=f"seed experiments: {error}")
    planned = planned_variants(planned_split)
    control_problem = variant_problem(control_variant, names)
    if control_problem:
        return FactorialResult(None, cells, skipped=f"seed experiments: control variant {control_variant!r}: "
                               f"{control_problem}")  # fmt: skip
    left_out = {}
    for variant in cells["variant"]:
        problem = None if variant == control_variant else variant_problem(variant, names, planned)
        if problem:
            left_out[variant] = problem
    all_cells, cells = cells, cells[~cells["variant"].isin(left_out)].reset_index(drop=True)
    if control_variant not in set(cells["variant"]):
        return FactorialResult(None, all_cells, skipped=f"no exposures of the control variant {control_variant!r}",
                               left_out=left_out)  # fmt: skip
    result = _fit_design(experiment_id, factors, control_variant, cells, min_users_per_cell)
    result.left_out = left_out
    return result


def _fit_design(
    experiment_id: str, factors: str, control_variant: str, cells: pd.DataFrame, min_users_per_cell: int
) -> FactorialResult:
    """fit_factorial on cells that all fit the design."""
    design = parse_design(experiment_id, factors, control_variant, list(cells["variant"]))
    expected = math.prod(len(levels) for levels in design.levels.values())
    if len(cells) < expected:
        return FactorialResult(design, cells, skipped=f"{len(cells)} of the {expected} cells have exposures")
    small = cells[cells["users"] < min_users_per_cell]
    if len(small):
        return FactorialResult(
            design,
            cells,
            skipped=f"cells below {min_users_per_cell} users: "
            + ", ".join(f"{r.variant} ({r.users})" for r in small.itertuples()),
        )
    degenerate = cells[(cells["conversions"] == 0) | (cells["conversions"] == cells["users"])]
    if len(degenerate):
        return FactorialResult(
            design,
            cells,
            skipped="cells where nobody or everybody converted (the log-odds are "
            "infinite): " + ", ".join(degenerate["variant"]),
        )
    import statsmodels.api as sm  # seconds to import: only when there is something to fit

    exog = design_matrix(design, list(cells["variant"]))
    endog = np.column_stack([cells["conversions"], cells["users"] - cells["conversions"]]).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a saturated fit has no residual df; the scale stays 1
        fit = sm.GLM(endog, exog.to_numpy(), family=sm.families.Binomial()).fit()
    interval = fit.conf_int(0.05)
    names = list(exog.columns)
    rows = []
    for i, name in enumerate(names):
        if name == "intercept":
            continue
        low, high = float(interval[i][0]), float(interval[i][1])
        rows.append(
            {
                "experiment_id": experiment_id,
                "effect": name,
                "log_odds": float(fit.params[i]),
                "std_error": float(fit.bse[i]),
                "ci_low": low,
                "ci_high": high,
                "odds_ratio": math.exp(fit.params[i]),
                "odds_ratio_ci_low": math.exp(low),
                "odds_ratio_ci_high": math.exp(high),
                "p_value": float(fit.pvalues[i]),
                "users": int(cells["users"].sum()),
            }
        )
    return FactorialResult(design, cells, pd.DataFrame(rows, columns=EFFECT_COLUMNS))


def log_to_mlflow(
    result: FactorialResult, mlflow_experiment: str = "factorial_experiments", experiment_id: str | None = None
) -> str:
    """One MLflow run per fit: the cells it read (as an input dataset and a CSV), the design, and every effect
    as metrics and a CSV. Tracks to ml.settings.tracking_uri(); returns the run id."""
    import mlflow

    from ml.settings import artifact_root
    from ml.tracking import client

    client()  # sets mlflow's default URI without leaving it in os.environ (see ml.tracking.client)
    found = mlflow.get_experiment_by_name(mlflow_experiment)
    if found is None:
        location = artifact_root() / mlflow_experiment
        location.mkdir(parents=True, exist_ok=True)
        tracking_experiment = mlflow.create_experiment(mlflow_experiment, artifact_location=location.as_uri())
    else:
        tracking_experiment = found.experiment_id
    if experiment_id is None:
        experiment_id = str(result.effects["experiment_id"].iloc[0]) if len(result.effects) else "unknown"
    if result.design is not None:
        experiment_id = result.design.experiment_id
    # experiment given to the run, not by mlflow.set_experiment (which leaves MLFLOW_EXPERIMENT_ID in os.environ)
    with mlflow.start_run(experiment_id=tracking_experiment, run_name=experiment_id) as run:
        mlflow.log_input(mlflow.data.from_pandas(result.cells, name=f"{experiment_id}_cells"), context="training")
        mlflow.log_text(result.cells.to_csv(index=False), "inputs/cells.csv")
        params = {
            "experiment_id": experiment_id,
            "model": "GLM binomial logit, full factorial, Wald 95% CI",
            "users": int(result.cells["users"].sum()),
        }
        if result.design is not None:
            params["factors"] = ";".join(result.design.factors)
            params["baselines"] = ";".join(f"{f}={lv[0]}" for f, lv in result.design.levels.items())
        mlflow.log_params(params)
        if result.skipped:
            mlflow.set_tag("skipped", result.skipped[:5000])
        mlflow.set_tag("cells_left_out", str(len(result.left_out)))
        if result.left_out:
            mlflow.set_tag("cells_left_out_reasons", result.left_out_text()[:5000])
        for row in result.effects.itertuples():
            key = re.sub(r"[^A-Za-z0-9_.-]", "_", row.effect.replace(":", "_x_").replace("=", "_"))[:200]
            mlflow.log_metrics(
                {
                    f"{key}.log_odds": row.log_odds,
                    f"{key}.ci_low": row.ci_low,
                    f"{key}.ci_high": row.ci_high,
                    f"{key}.p_value": row.p_value,
                }
            )
        mlflow.log_text(result.effects.to_csv(index=False), "effects.csv")
        return run.info.run_id
