"""Users and their clean events, simulated in chunks of users (vectorised within a chunk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.activity import emails, make_sessions, refunds, session_events
from demo_events.config import GeneratorConfig
from demo_events.events import Events
from demo_events.experiment import Assignment, run_experiment, run_factorial
from demo_events.population import Users, make_users


@dataclass
class Simulation:
    """All users, all clean events (user is the global user index) and the experiment's assignment."""

    users: Users
    events: Events
    assignment: Assignment


def simulate(config: GeneratorConfig, users: int, seed: np.random.SeedSequence) -> Simulation:
    """Draw `users` users and everything they do. Chunks have their own random streams, so memory is bounded
    by `config.chunk_users` and the result depends only on the seed, the config and the number of users."""
    population_seed, activity_seed = seed.spawn(2)
    # spawned after the first two, so the factorial experiment leaves every earlier random stream as it was
    (factorial_seed,) = seed.spawn(1)
    population = make_users(config, users, np.random.default_rng(population_seed))
    chunk_seeds = activity_seed.spawn(-(-users // config.chunk_users))
    factorial_seeds = factorial_seed.spawn(len(chunk_seeds))
    parts: list[Events] = []
    assignments: list[Assignment] = []
    next_order = 0
    for number, start in enumerate(range(0, users, config.chunk_users)):
        rng = np.random.default_rng(chunk_seeds[number])
        chunk = population.take(slice(start, start + config.chunk_users))
        sessions = make_sessions(chunk, config, rng)
        events, n_orders = session_events(chunk, sessions, config, rng)
        events, assignment = run_experiment(chunk, sessions, events, n_orders, config, rng)
        factorial, assignment = run_factorial(chunk, assignment, config, np.random.default_rng(factorial_seeds[number]))
        has_order = events.order >= 0
        events.order[has_order] += next_order
        next_order = int(events.order.max(initial=next_order - 1)) + 1
        events = Events.concat([events, refunds(events, chunk, config, rng), emails(chunk, config, rng), factorial])
        events.user += start
        parts.append(events)
        assignments.append(assignment)
    return Simulation(
        users=population,
        events=Events.concat(parts),
        assignment=Assignment.concat(assignments),
    )
