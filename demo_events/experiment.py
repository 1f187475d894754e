"""The A/B test: exposure on the first session after the start, conversion decided by the planted rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.activity import Sessions, make_orders
from demo_events.config import DAY_MS, MINUTE_MS, GeneratorConfig
from demo_events.events import COUPON_APPLIED, EXPERIMENT_VIEWED, ORDER_COMPLETED, PLAN_UPGRADED, Events
from demo_events.population import Users

MIN_LEAD_MS = 6 * MINUTE_MS  # an exposing session starts at least this long before churn


@dataclass
class Assignment:
    """Per user of a chunk: variant (-1 unexposed, 0 control, 1 treatment), exposure time, conversion."""

    variant: np.ndarray  # int8
    exposed_ms: np.ndarray  # int64, -1 when unexposed
    converted: np.ndarray  # int8, -1 when unexposed
    exposure_first: np.ndarray  # bool, the exposing session is the signup session (carries the first touch)
    factorial_cell: np.ndarray  # int8, -1 when unexposed; tour + 2 * badge
    factorial_converted: np.ndarray  # int8, -1 when unexposed

    @classmethod
    def concat(cls, parts: list[Assignment]) -> Assignment:
        """The assignments of consecutive chunks as one."""
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__})


def run_experiment(
    users: Users,
    sessions: Sessions,
    events: Events,
    first_order_no: int,
    config: GeneratorConfig,
    rng: np.random.Generator,
) -> tuple[Events, Assignment]:
    """Expose, replace organic orders in the conversion window by planted ones, and add exposure events.

    Exposure is the user's first session starting between the experiment start and the exposure deadline
    (so the whole conversion window lies before the end). Exposed users' own "Order Completed" and
    "Coupon Applied" rows inside the window are removed; a converting user (chance p_control or
    p_treatment) gets exactly one order uniformly inside the window and before churn.
    """
    n = len(users)
    horizon = users.horizon_ms(config.end_ms)
    base = sessions.first_event_ms
    eligible = (
        (sessions.start >= config.experiment_start_ms)
        & (sessions.start <= config.exposure_deadline_ms)
        & (sessions.start + MIN_LEAD_MS < horizon[sessions.user])
    )
    first_user, first_pos = np.unique(sessions.user[eligible], return_index=True)
    first_session = np.flatnonzero(eligible)[first_pos]
    k = len(first_user)

    variant = np.full(n, -1, dtype=np.int8)
    exposed_ms = np.full(n, -1, dtype=np.int64)
    converted = np.full(n, -1, dtype=np.int8)
    variant[first_user] = (rng.random(k) < 0.5).astype(np.int8)
    exposed_ms[first_user] = base[first_session] + rng.integers(2_000, 30_000, k)

    window = config.conversion_window_days * DAY_MS
    exposure = exposed_ms[events.user]
    in_window = (exposure >= 0) & (events.ts > exposure) & (events.ts <= exposure + window)
    organic = in_window & np.isin(events.kind, (ORDER_COMPLETED, COUPON_APPLIED))
    events = events.take(~organic)

    rate = np.where(variant[first_user] == 1, config.p_treatment, config.p_control)
    wins = rng.random(k) < np.minimum(rate * pre_period_multiplier(first_user, exposed_ms, events, n, config), 1)
    converted[first_user] = wins.astype(np.int8)
    buyer = first_user[wins]
    start = exposed_ms[buyer]
    span = np.minimum(window, horizon[buyer] - start) - 2 * MINUTE_MS
    order_ts = start + MINUTE_MS + (rng.random(len(buyer)) * span).astype(np.int64)
    order_no = first_order_no + np.arange(len(buyer))
    not_first = np.zeros(len(buyer), dtype=bool)  # planted orders come after the signup session
    orders, coupons = make_orders(users, buyer, order_ts, not_first, order_no, config, rng)

    exposure_first = np.zeros(n, dtype=bool)
    exposure_first[first_user] = sessions.signup[first_session]
    exposure_events = Events.build(
        first_user,
        exposed_ms[first_user],
        EXPERIMENT_VIEWED,
        first=exposure_first[first_user],
        attr=variant[first_user],
    )
    # Later sessions show the experiment again; only the first view is the exposure.
    later = (sessions.start >= config.experiment_start_ms) & (variant[sessions.user] >= 0)
    later &= rng.random(len(later)) < config.repeat_exposure_prob
    r_user = sessions.user[later]
    r_ts = base[later] + rng.integers(2_000, 30_000, len(r_user))
    keep = (r_ts > exposed_ms[r_user]) & (r_ts < horizon[r_user])
    repeats = Events.build(r_user[keep], r_ts[keep], EXPERIMENT_VIEWED, attr=variant[r_user[keep]])

    events = Events.concat([events, exposure_events, repeats, orders, coupons])
    none = np.full(n, -1, dtype=np.int8)
    assignment = Assignment(variant, exposed_ms, converted, exposure_first, none, none.copy())
    return events, assignment


def pre_period_multiplier(
    first_user: np.ndarray, exposed_ms: np.ndarray, events: Events, n: int, config: GeneratorConfig
) -> np.ndarray:
    """Per exposed user (in first_user's order), the factor on the conversion rate: users with an order in the
    pre_period_days before their exposure convert pre_buyer_rate_ratio times as often as the others, scaled so that
    the chunk's mean factor is 1 (the variants' average rates stay the planted ones)."""
    if len(first_user) == 0:
        return np.ones(0)
    exposure = exposed_ms[events.user]
    before = (events.kind == ORDER_COMPLETED) & (exposure >= 0) & (events.ts < exposure)
    before &= events.ts > exposure - config.pre_period_days * DAY_MS
    buyer = np.zeros(n, dtype=bool)
    buyer[events.user[before]] = True
    is_buyer = buyer[first_user]
    share = is_buyer.mean()
    others = 1 / (share * config.pre_buyer_rate_ratio + 1 - share)
    return np.where(is_buyer, config.pre_buyer_rate_ratio * others, others)


def run_factorial(
    users: Users, assignment: Assignment, config: GeneratorConfig, rng: np.random.Generator
) -> tuple[Events, Assignment]:
    """The 2x2 factorial experiment: the A/B test's exposed users see it a few seconds after their A/B exposure,
    get one of four cells uniformly, and convert ("Plan Upgraded", once, uniformly in the window and before
    churn) with the cell's planted probability. Its own random stream leaves the A/B test's draws unchanged."""
    exposed = np.flatnonzero(assignment.variant >= 0)
    k = len(exposed)
    cell = rng.integers(0, 4, k).astype(np.int8)
    seen_ms = assignment.exposed_ms[exposed] + rng.integers(1_000, 5_000, k)
    wins = rng.random(k) < np.asarray(config.factorial_probabilities())[cell]
    horizon = users.horizon_ms(config.end_ms)[exposed[wins]]
    start = seen_ms[wins]
    span = np.minimum(config.conversion_window_days * DAY_MS, horizon - start) - 2 * MINUTE_MS
    upgraded_ms = start + MINUTE_MS + (rng.random(len(start)) * span).astype(np.int64)

    first = assignment.exposure_first[exposed]
    views = Events.build(exposed, seen_ms, EXPERIMENT_VIEWED, first=first, attr=cell.astype(np.int16) + 2)
    upgrades = Events.build(exposed[wins], upgraded_ms, PLAN_UPGRADED, first=first[wins])
    assignment.factorial_cell[exposed] = cell
    assignment.factorial_converted[exposed] = wins.astype(np.int8)
    return Events.concat([views, upgrades]), assignment
