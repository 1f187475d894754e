"""When clean events arrive (received_at, some days late) and which UTC offset their timestamp shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.config import COUNTRIES, COUNTRY_OFFSETS, DAY_MS, GeneratorConfig
from demo_events.events import Events
from demo_events.population import Users

MAX_DELAY_MS = 30_000


@dataclass
class Arrival:
    """Per clean event: arrival time, written UTC offset in minutes, and whether it arrived late."""

    received_ms: np.ndarray  # int64
    offset_min: np.ndarray  # int16, 0 renders as "Z"
    late: np.ndarray  # bool


def arrive(events: Events, users: Users, config: GeneratorConfig, rng: np.random.Generator) -> Arrival:
    """Normally a few seconds after the event; `late_share` of events exactly 1-5 days after it."""
    n = len(events)
    delay = 300 + rng.lognormal(np.log(1_500), 0.7, n).astype(np.int64)
    received = events.ts + np.minimum(delay, MAX_DELAY_MS)
    late_rows = rng.choice(n, size=round(config.late_share * n), replace=False)
    received[late_rows] = events.ts[late_rows] + rng.integers(DAY_MS, 5 * DAY_MS, len(late_rows))
    late = np.zeros(n, dtype=bool)
    late[late_rows] = True

    local = np.array([COUNTRY_OFFSETS[c] for c in COUNTRIES], dtype=np.int16)[users.country[events.user]]
    offset = np.where(rng.random(n) < config.offset_share, local, 0).astype(np.int16)
    return Arrival(received_ms=received, offset_min=offset, late=late)
