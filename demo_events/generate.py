"""One generator run: simulate, add arrival times and defects, lay out files, write them and the truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from demo_events.arrival import arrive
from demo_events.config import GeneratorConfig
from demo_events.dirty import make_defects
from demo_events.layout import FilePlan, plan_layout
from demo_events.render import Source
from demo_events.simulate import simulate
from demo_events.truth import Truth, build_truth, users_table, write_truth
from demo_events.writer import write_files

PILOT_USERS = 10_000


def generate(config: GeneratorConfig, data_dir: Path, progress: bool = False) -> Truth:
    """Write demo events into `data_dir/landing` and the ground truth into `data_dir/demo_truth`.

    Earlier generator files (events_NNNN.*) in the landing folder that this run does not rewrite are
    removed, so the landing folder and the truth always describe the same data set.
    """
    data_dir = Path(data_dir)
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    bar = tqdm(total=None, unit=" rows", unit_scale=True, desc="demo-events", disable=not progress)
    try:
        bar.set_postfix_str("simulating")
        sim = simulate(config, config.users, seeds[0])
        arrival = arrive(sim.events, sim.users, config, np.random.default_rng(seeds[1]))
        defects = make_defects(sim.events, config, np.random.default_rng(seeds[2]))
        layout = plan_layout(arrival.received_ms, defects, config, np.random.default_rng(seeds[3]))
        bar.reset(total=len(layout.order))
        bar.set_postfix_str("writing")

        def on_file(plan: FilePlan) -> None:
            bar.update(plan.rows)

        source = Source(sim.events, arrival, sim.users, defects, config.seed, config.experiment_id, config.factorial_id)
        write_files(layout, source, data_dir / "landing", on_file=on_file)
        bar.set_postfix_str("truth")
        truth = build_truth(config, config.users, sim, arrival, defects, layout)
        write_truth(truth, users_table(config, sim), data_dir / "demo_truth")
        bar.set_postfix_str("done")
    finally:
        bar.close()
    return truth


def rows_per_user(config: GeneratorConfig, pilot_users: int = PILOT_USERS) -> float:
    """Rows written per user (clean events plus defects), estimated from a pilot simulation."""
    pilot = replace(config, users=pilot_users)
    sim = simulate(pilot, pilot_users, np.random.SeedSequence([config.seed, 0x9107]))
    return len(sim.events) / pilot_users / (1 - config.dirty_share)


def users_for_events(config: GeneratorConfig, events: int) -> int:
    """How many users give about `events` rows under this config."""
    return max(1, round(events / rows_per_user(config)))
