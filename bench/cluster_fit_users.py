"""Clustering fitted on every training user against fitting its candidates on a sample (ML_CLUSTER_FIT_USERS).

Reads the clustering inputs of a built warehouse (read-only) and trains once per size given, measuring wall and
CPU seconds, the chosen algorithm and k, the holdout confidence and, with the demo generator's truth, the adjusted
Rand index against the planted personas over all users and by band of history. Nothing is logged to MLflow.
Usage: python -m bench.cluster_fit_users WAREHOUSE DEMO_TRUTH_USERS_PARQUET [--out JSON] FIT_USERS... (0: all)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import pandas as pd

from ml.clustering import ClusterParams, planted_agreement, train_clustering
from ml.features import load_cluster_inputs


def compare(warehouse: Path, truth: Path, sizes: list[int]) -> dict[str, dict[str, object]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        features, population = load_cluster_inputs(con)
    planted = pd.read_parquet(truth)[["user_id", "persona"]]
    results: dict[str, dict[str, object]] = {}
    for fit_users in sizes:
        started, cpu = time.perf_counter(), time.process_time()
        result = train_clustering(features, population, ClusterParams(fit_users=fit_users))
        row: dict[str, object] = {
            "training_users": len(result.training_frame),
            "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
            "algorithm": result.algorithm,
            "k": result.k,
            "holdout_confidence": round(result.holdout_confidence, 4),
        }
        agreement = planted_agreement(result.assignments, features, planted)
        row |= {name: round(value, 4) for name, value in agreement.items()}
        results[str(fit_users)] = row
        print(f"fit_users={fit_users or 'all'}: {row}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("sizes", type=int, nargs="+")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = compare(args.warehouse, args.truth, args.sizes)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
