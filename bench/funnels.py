"""A 4-step funnel on a built warehouse: the funnel models (dbt) against one hand-written DuckDB query for the same
funnel, in the same run.

The funnel: page_viewed -> product_viewed -> product_added -> order_completed, sequential, a 7-day window from each
user's first page view, no breakdown. The warehouse (by default the 10M-event set `make bench` builds, or any
DATA_DIR with a built warehouse) is copied first, the funnel seeds are replaced by this one funnel, and then:

- ours: `dbt run --full-refresh` of int_funnel_definitions, int_funnel_step_definitions, int_funnel_step_events,
  int_funnel_journeys and funnel_conversion, in its own process; the models' own seconds from dbt's
  run_results.json (the work) and the invocation's wall seconds (with dbt's start-up);
- baseline: one DuckDB query over the same intermediate.int_activity_events computing the users at each step with
  the same rules (earliest next event by time and message id, within the window), in its own process.

Both must give the same users at each step (checked); the figures go to bench/results/funnels.json.

    python -m bench.funnels [--data-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

from bench.timing import timed

ROOT = Path(__file__).resolve().parent
DBT_PROJECT = ROOT.parent / "dbt_project"
DEFAULT_DATA_DIR = ROOT / "work" / "10000000" / "data"  # where `make bench` builds its 10M-event set
STEPS = ("page_viewed", "product_viewed", "product_added", "order_completed")
FUNNEL_MODELS = (
    "int_funnel_definitions",
    "int_funnel_step_definitions",
    "int_funnel_step_events",
    "int_funnel_journeys",
    "funnel_conversion",
)

# Step k: the earliest event of step k's name after step k - 1's event (time, then message id) and at most 7 days
# after the entry (the first page view).
HAND_WRITTEN_SQL = """
with events as (
    select user_id, event_name, event_at, message_id
    from intermediate.int_activity_events
    where event_name in ('page_viewed', 'product_viewed', 'product_added', 'order_completed')
),
s1 as (
    select user_id, min(event_at) as t, arg_min(message_id, (event_at, message_id)) as m,
        min(event_at) + interval 7 day as ends
    from events where event_name = 'page_viewed' group by user_id
),
s2 as (
    select s1.user_id, s1.ends, arg_min(e.event_at, (e.event_at, e.message_id)) as t,
        arg_min(e.message_id, (e.event_at, e.message_id)) as m
    from s1 join events e on e.user_id = s1.user_id and e.event_name = 'product_viewed'
        and (e.event_at > s1.t or (e.event_at = s1.t and e.message_id > s1.m)) and e.event_at <= s1.ends
    group by s1.user_id, s1.ends
),
s3 as (
    select s2.user_id, s2.ends, arg_min(e.event_at, (e.event_at, e.message_id)) as t,
        arg_min(e.message_id, (e.event_at, e.message_id)) as m
    from s2 join events e on e.user_id = s2.user_id and e.event_name = 'product_added'
        and (e.event_at > s2.t or (e.event_at = s2.t and e.message_id > s2.m)) and e.event_at <= s2.ends
    group by s2.user_id, s2.ends
),
s4 as (
    select s3.user_id
    from s3 join events e on e.user_id = s3.user_id and e.event_name = 'order_completed'
        and (e.event_at > s3.t or (e.event_at = s3.t and e.message_id > s3.m)) and e.event_at <= s3.ends
    group by s3.user_id
)
select (select count(*) from s1), (select count(*) from s2), (select count(*) from s3), (select count(*) from s4)
"""


def hand_written(warehouse: str) -> list[int]:
    """Users at each step, by the hand-written query (run as a script: its own process)."""
    with duckdb.connect(warehouse, read_only=True) as con:
        return list(con.execute(HAND_WRITTEN_SQL).fetchone())


def _set_funnel(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from seeds.funnels")
        con.execute(
            "insert into seeds.funnels (funnel_id, conversion_window, window_unit, ordering, entry) "
            "values ('bench', '7', 'day', 'sequential', 'first')"
        )
        con.execute("delete from seeds.funnel_steps")
        con.executemany(
            "insert into seeds.funnel_steps (funnel_id, step_kind, step_number, event_name) "
            "values ('bench', 'step', ?, ?)",
            [[str(n), name] for n, name in enumerate(STEPS, start=1)],
        )


def _dbt(*args: str, target: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(DBT_PROJECT),
        "--profiles-dir", str(DBT_PROJECT), "--target-path", str(target), "--log-path", str(target / "logs"),
    ]  # fmt: skip


def _ours(data_dir: Path, env: dict[str, str], target: Path) -> dict[str, object]:
    figures = timed(_dbt("run", "--full-refresh", "--select", *FUNNEL_MODELS, target=target), env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    models = {row["unique_id"].split(".")[-1]: round(row["execution_time"], 2) for row in results}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        users = [
            row[0]
            for row in con.execute(
                "select users from marts.funnel_conversion where funnel_id = 'bench' and grain = 'all' "
                "and breakdown_value = '(all)' order by step_number"
            ).fetchall()
        ]
    return {
        "wall_seconds": figures["seconds"],
        "cpu_seconds": figures["cpu_seconds"],
        "peak_mb": figures["peak_mb"],
        "model_seconds": models,
        "funnel_seconds": round(sum(models.values()), 2),
        "users_per_step": users,
    }


def _baseline(warehouse: Path, env: dict[str, str]) -> dict[str, object]:
    figures = timed([sys.executable, "-m", "bench.funnels", "--hand-written", str(warehouse)], env)
    return {
        "seconds": figures["seconds"],
        "cpu_seconds": figures["cpu_seconds"],
        "peak_mb": figures["peak_mb"],
        "users_per_step": json.loads(str(figures["stdout"]).splitlines()[-1]),
    }


def measure(data_dir: Path, runs: int) -> dict[str, object]:
    """Copy the warehouse, then time ours and the hand-written query `runs` times each, alternating."""
    with tempfile.TemporaryDirectory(prefix="bench-funnels-", dir=data_dir.parent) as folder:
        work = Path(folder) / "data"
        work.mkdir()
        shutil.copy(data_dir / "warehouse.duckdb", work / "warehouse.duckdb")
        env = {**os.environ, "DATA_DIR": str(work), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        # the seed tables (a warehouse built before funnels existed has none), then this benchmark's one funnel
        timed(_dbt("seed", "--select", "funnels", "funnel_steps", target=Path(folder) / "target-seed"), env)
        _set_funnel(work / "warehouse.duckdb")
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
            events = con.execute("select count(*) from intermediate.int_activity_events").fetchone()[0]
        ours, baseline = [], []
        for run in range(runs):
            ours.append(_ours(work, env, Path(folder) / f"target-{run}"))
            baseline.append(_baseline(work / "warehouse.duckdb", env))
            print(f"run {run + 1}: ours {ours[-1]['funnel_seconds']} s (wall {ours[-1]['wall_seconds']} s), "
                  f"hand-written {baseline[-1]['seconds']} s", flush=True)  # fmt: skip
    if any(o["users_per_step"] != b["users_per_step"] for o, b in zip(ours, baseline, strict=True)):
        raise AssertionError(f"the two disagree: {ours[0]['users_per_step']} vs {baseline[0]['users_per_step']}")
    best_ours = min(o["funnel_seconds"] for o in ours)
    best_wall = min(o["wall_seconds"] for o in ours)
    best_baseline = min(b["seconds"] for b in baseline)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "activity_events": events,
        "funnel": " -> ".join(STEPS) + ", sequential, 7 days from the first page view",
        "users_per_step": ours[0]["users_per_step"],
        "runs": {"ours": ours, "hand_written_duckdb": baseline},
        "best": {
            "ours_models_seconds": best_ours,
            "ours_wall_seconds": best_wall,
            "hand_written_seconds": best_baseline,
        },
        "ratios": {
            "ours_models_over_hand_written": round(best_ours / best_baseline, 2),
            "ours_wall_over_hand_written": round(best_wall / best_baseline, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="a DATA_DIR with a built warehouse")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "funnels.json")
    parser.add_argument("--hand-written", metavar="WAREHOUSE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hand_written:
        print(json.dumps(hand_written(args.hand_written)))
        return 0
    result = measure(args.data_dir.resolve(), args.runs)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ratios = result["ratios"]
    print(
        f"{result['activity_events']:,} activity events, users per step {result['users_per_step']}: funnel models "
        f"{result['best']['ours_models_seconds']} s ({ratios['ours_models_over_hand_written']}x the hand-written "
        f"query's {result['best']['hand_written_seconds']} s; {ratios['ours_wall_over_hand_written']}x with dbt's "
        f"start-up)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
