"""The A/B test: exposure on the first session after the start, conversion decided by the planted rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.activity import Sessions, make_orders
from demo_events.config import DAY_MS, MINUTE_MS, GeneratorConfig
from demo_events.events import COUPON_APPLIED, EXPERIMENT_VIEWED, ORDER_COMPLETED, Events
from demo_events.population import Users

MIN_LEAD_MS = 6 * MINUTE_MS  # an exposing session starts at least this long before churn


@dataclass
class Assignment:
    """Per user of a chunk: variant (-1 unexposed, 0 control, 1 treatment), exposure time, conversion."""

    variant: np.ndarray  # int8
    exposed_ms: np.ndarray  # int64, -1 when unexposed
    converted: np.ndarray  # int8, -1 when unexposed


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
    wins = rng.random(k) < rate
    converted[first_user] = wins.astype(np.int8)
    buyer = first_user[wins]
    start = exposed_ms[buyer]
    span = np.minimum(window, horizon[buyer] - start) - 2 * MINUTE_MS
    order_ts = start + MINUTE_MS + (rng.random(len(buyer)) * span).astype(np.int64)
    order_no = first_order_no + np.arange(len(buyer))
    not_first = np.zeros(len(buyer), dtype=bool)  # planted orders come after the signup session
    orders, coupons = make_orders(users, buyer, order_ts, not_first, order_no, config, rng)

    exposure_events = Events.build(
        first_user,
        exposed_ms[first_user],
        EXPERIMENT_VIEWED,
        first=sessions.signup[first_session],
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
    return events, Assignment(variant=variant, exposed_ms=exposed_ms, converted=converted)
