"""`python -m bench.experiment_stats`: the error rates of ml/experiment_stats.py by simulation at full size.

1,000 A/A experiments read daily for 28 days (the fixed-horizon interval read daily, read once, and the confidence
sequence); 1,000 experiments with a planted effect and a pre-period correlation of 0.7 (coverage of the raw and the
CUPED interval, CUPED's width and variance reduction); 1,000 experiments whose metric also follows three of the 32
behavioural features (CUPAC's cross-fitted model against CUPED: coverage, width, variance reduction); 1,000
families of 20 tests with 5 planted effects (Benjamini-Hochberg's false discovery rate and Holm's family-wise
error). Fixed seeds; writes bench/results/experiment_stats.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ml.experiment_simulation import (
    aa_peeking_false_positives,
    cupac_coverage,
    cuped_coverage,
    false_discovery_rate,
)

OUT = Path(__file__).resolve().parent / "results" / "experiment_stats.json"


def main() -> int:
    started = time.perf_counter()
    results = {
        "aa_peeking": asdict(aa_peeking_false_positives(experiments=1000, days=28, users_per_day=200, seed=1)),
        "cuped": asdict(cuped_coverage(experiments=1000, users=2000, effect=0.1, correlation=0.7, seed=2)),
        "cupac": asdict(cupac_coverage(experiments=1000, users=2000, effect=0.1, seed=4)),
        "multiple_testing": asdict(false_discovery_rate(families=1000, tests=20, planted=5, effect=3.0, seed=3)),
    }
    results = {name: {key: round(float(value), 4) for key, value in rows.items()} for name, rows in results.items()}
    results["seconds"] = round(time.perf_counter() - started, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    for name, rows in results.items():
        print(name, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
