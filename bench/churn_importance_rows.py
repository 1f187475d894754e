"""Churn permutation importance on every holdout user against a sample of them (ML_CHURN_IMPORTANCE_ROWS).

Reads the churn snapshots of a built warehouse (read-only) and trains once per size given, measuring wall and CPU
seconds, the chosen family and holdout ROC AUC (the same whatever the size: only the importance is sampled), and
how the importance compares with the one on all holdout users: Spearman's rank correlation over the features and
whether the five most important are the same, in the same order. Nothing is logged to MLflow.
Usage: python -m bench.churn_importance_rows WAREHOUSE [--out JSON] ROWS... (0: all; put 0 first)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import pandas as pd
from scipy.stats import spearmanr

from ml.churn import ChurnParams, train_churn
from ml.features import load_churn_snapshots


def compare(warehouse: Path, sizes: list[int]) -> dict[str, dict[str, object]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        snapshots = load_churn_snapshots(con)
    results: dict[str, dict[str, object]] = {}
    reference: pd.Series | None = None
    for rows in sizes:
        started, cpu = time.perf_counter(), time.process_time()
        result = train_churn(snapshots, ChurnParams(importance_rows=rows))
        importance = result.importance.set_index("feature")["importance"]
        row: dict[str, object] = {
            "snapshots": len(snapshots),
            "holdout_users": len(result.split.holdout),
            "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
            "family": result.model_family,
            "holdout_roc_auc": round(result.holdout_metrics["roc_auc"], 4),
            "top5": list(importance.index[:5]),
        }
        if reference is None:
            reference = importance
        else:
            row["spearman_vs_first"] = round(float(spearmanr(reference, importance.reindex(reference.index))[0]), 3)
            row["same_top5_as_first"] = list(importance.index[:5]) == list(reference.index[:5])
        results[str(rows)] = row
        print(f"importance_rows={rows or 'all'}: {row}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("sizes", type=int, nargs="+")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = compare(args.warehouse, args.sizes)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
