"""Sessions on active days and the events inside them, then refunds and system emails."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.config import (
    COUPON_DISCOUNT,
    DAY_MS,
    EMAIL_WEIGHTS,
    HOUR_MS,
    PERSONAS,
    PREFERENCE_BOOST,
    PREFERRED_BLOCK,
    PREFERRED_FIRST,
    PRODUCTS,
    SEARCH_QUERIES,
    SIGNUP_PAGES,
    WEEKDAY_WEIGHTS,
    GeneratorConfig,
)
from demo_events.events import (
    COUPON_APPLIED,
    EMAIL_SENT,
    FEATURE_USED,
    IDENTIFY,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PAGE,
    SEARCH_PERFORMED,
    SESSION_KINDS,
    SIGNED_UP,
    Events,
)
from demo_events.population import Users, persona_hours, persona_table
from demo_events.sampling import categorical, grouped_categorical, segment_cumsum, segment_index

MAX_EVENTS_PER_SESSION = 40
SIGNUP_LEAD_MS = 3_000  # identify at signup, "Signed Up" within it, regular events after it
PRODUCT_WEIGHTS = 1.0 / np.arange(1, PRODUCTS + 1) ** 0.8  # a few popular products, a long tail


def persona_products(config: GeneratorConfig) -> np.ndarray:
    """Product weights for each persona code (rows): popularity, times PREFERENCE_BOOST on the persona's own block
    of products (config.PREFERRED_FIRST, PREFERRED_BLOCK)."""
    table = np.tile(PRODUCT_WEIGHTS, (len(config.persona_names()), 1))
    for code, name in enumerate(config.persona_names()):
        first = PREFERRED_FIRST + list(PERSONAS).index(name) * PREFERRED_BLOCK
        table[code, first : first + PREFERRED_BLOCK] *= PREFERENCE_BOOST
    return table


@dataclass
class Sessions:
    """Sessions sorted by user then start; `user` indexes the chunk's users."""

    user: np.ndarray  # int64
    start: np.ndarray  # int64 ms; for the signup session: the signup time
    signup: np.ndarray  # bool, the user's first session (signup happens in it)

    @property
    def first_event_ms(self) -> np.ndarray:
        """Time of the first regular (logged-in) event of each session."""
        return np.where(self.signup, self.start + SIGNUP_LEAD_MS, self.start)


def make_sessions(users: Users, config: GeneratorConfig, rng: np.random.Generator) -> Sessions:
    """The signup session, more sessions on the signup day, and sessions on later active days."""
    n = len(users)
    horizon = users.horizon_ms(config.end_ms)
    extra = persona_table(config, "extra_sessions")[users.persona]

    # Candidate days after the signup day up to the horizon; each is active with the user's daily chance.
    day0 = users.signup_ms // DAY_MS
    later = np.maximum((horizon - 1) // DAY_MS - day0, 0)
    cand_user = np.repeat(np.arange(n), later)
    cand_day = day0[cand_user] + 1 + segment_index(later)
    weekday = np.asarray(WEEKDAY_WEIGHTS) / np.mean(WEEKDAY_WEIGHTS)
    chance = users.activity_rate[cand_user] / 7 * weekday[(cand_day + 3) % 7]
    decays = persona_table(config, "decays")[users.persona][cand_user]
    if decays.any():
        life = (users.churn_ms - users.signup_ms)[cand_user]
        elapsed = cand_day * DAY_MS + DAY_MS // 2 - users.signup_ms[cand_user]
        fade = np.clip(1.0 - elapsed / life, 0.0, 1.0)
        chance = np.where(decays, chance * fade, chance)
    active = rng.random(len(cand_day)) < np.minimum(chance, 0.95)
    act_user, act_day = cand_user[active], cand_day[active]

    per_day = 1 + rng.poisson(extra[act_user])
    day_user = np.repeat(act_user, per_day)
    hour = grouped_categorical(rng, users.persona[day_user], persona_hours(config)).astype(np.int64)
    minute = rng.integers(0, HOUR_MS, len(day_user))
    day_start = np.repeat(act_day, per_day) * DAY_MS + hour * HOUR_MS + minute

    # More sessions on the signup day, hours after signing up.
    same_day = rng.poisson(extra)
    sd_user = np.repeat(np.arange(n), same_day)
    sd_start = users.signup_ms[sd_user] + rng.integers(HOUR_MS, 10 * HOUR_MS, len(sd_user))

    user = np.concatenate([np.arange(n), sd_user, day_user])
    start = np.concatenate([users.signup_ms, sd_start, day_start])
    signup = np.zeros(len(user), dtype=bool)
    signup[:n] = True
    keep = start < horizon[user]
    user, start, signup = user[keep], start[keep], signup[keep]
    order = np.lexsort((start, user))
    return Sessions(user=user[order], start=start[order], signup=signup[order])


def session_events(
    users: Users, sessions: Sessions, config: GeneratorConfig, rng: np.random.Generator
) -> tuple[Events, int]:
    """Every event of every session (before the horizon) and the chunk's next free order number.

    Signup sessions start with anonymous page views, then identify and "Signed Up". Order numbers start at 0.
    """
    persona = users.persona[sessions.user]
    n_sessions = len(sessions.user)

    # Regular events: a landing page view first, then draws from the persona's mix, a minute or so apart.
    mean = persona_table(config, "events_per_session")[persona]
    count = np.minimum(1 + rng.poisson(mean - 1), MAX_EVENTS_PER_SESSION)
    sess = np.repeat(np.arange(n_sessions), count)
    position = segment_index(count)
    gaps = np.where(position == 0, 0, 5_000 + rng.exponential(90_000, len(sess)).astype(np.int64))
    ts = sessions.first_event_ms[sess] + segment_cumsum(np.minimum(gaps, 600_000), count)
    mix = persona_table(config, "mix")
    kind = SESSION_KINDS[grouped_categorical(rng, persona[sess], mix)]
    kind[(position == 0) & ~sessions.signup[sess]] = PAGE
    attr = _session_attr(kind, persona[sess], config, rng)
    # (one uniform per event, as one draw from a single table took: the rest of the data stays as it was)
    product = np.where(
        np.isin(kind, SESSION_KINDS[1:3]), grouped_categorical(rng, persona[sess], persona_products(config)), -1
    )
    first = sessions.signup[sess]
    regular = Events.build(sessions.user[sess], ts, kind, first=first, attr=attr, product=product)

    # Orders end some sessions; coupon users apply a coupon just before ordering.
    last_ts = ts[np.cumsum(count) - 1]
    ordered = rng.random(n_sessions) < persona_table(config, "order_prob")[persona]
    o_sess = np.flatnonzero(ordered)
    o_ts = last_ts[o_sess] + 5_000 + rng.exponential(40_000, len(o_sess)).astype(np.int64)
    orders, coupons = make_orders(
        users, sessions.user[o_sess], o_ts, sessions.signup[o_sess], np.arange(len(o_sess)), config, rng
    )

    # The signup session's anonymous page views, identify and "Signed Up".
    su = sessions.user[sessions.signup]
    su_start = sessions.start[sessions.signup]
    n_anon = np.minimum(1 + rng.poisson(1.0, len(su)), 6)
    a_user = np.repeat(su, n_anon)
    back = segment_cumsum(10_000 + rng.exponential(50_000, len(a_user)).astype(np.int64), n_anon)
    anon_views = Events.build(
        a_user,
        np.repeat(su_start, n_anon) - back,
        PAGE,
        anon=True,
        first=True,
        attr=grouped_categorical(
            rng, users.persona[a_user], persona_table(config, "page_weights") * np.asarray(SIGNUP_PAGES)
        ),
    )
    identify = Events.build(su, su_start, IDENTIFY, first=True)
    signed_up = Events.build(su, su_start + rng.integers(1, SIGNUP_LEAD_MS, len(su)), SIGNED_UP, first=True)

    events = Events.concat([anon_views, identify, signed_up, regular, orders, coupons])
    horizon = users.horizon_ms(config.end_ms)
    return events.take(events.ts < horizon[events.user]), len(o_sess)


def make_orders(
    users: Users,
    user: np.ndarray,
    ts: np.ndarray,
    first: np.ndarray,
    order_no: np.ndarray,
    config: GeneratorConfig,
    rng: np.random.Generator,
) -> tuple[Events, Events]:
    """Orders ("Order Completed") at `ts`, and "Coupon Applied" just before those that use a coupon."""
    n = len(user)
    persona = users.persona[user]
    value = persona_table(config, "order_value")[persona] * np.exp(rng.normal(-0.18, 0.6, n))
    with_coupon = rng.random(n) < persona_table(config, "coupon_prob")[persona]
    coupon = np.where(with_coupon, rng.integers(0, len(COUPON_DISCOUNT), n), -1)
    value = value * (1 - np.where(with_coupon, np.asarray(COUPON_DISCOUNT)[coupon], 0.0))
    cents = np.maximum(np.round(value * 100), 99).astype(np.int64)
    product = grouped_categorical(rng, persona, persona_products(config))
    orders = Events.build(
        user, ts, ORDER_COMPLETED, first=first, attr=coupon, product=product, cents=cents, order=order_no
    )
    c = np.flatnonzero(with_coupon)
    coupons = Events.build(
        user[c], ts[c] - rng.integers(2_000, 20_000, len(c)), COUPON_APPLIED, first=first[c], attr=coupon[c]
    )
    return orders, coupons


def _session_attr(
    kind: np.ndarray, persona: np.ndarray, config: GeneratorConfig, rng: np.random.Generator
) -> np.ndarray:
    attr = np.full(len(kind), -1, dtype=np.int16)
    pages = np.flatnonzero(kind == PAGE)
    attr[pages] = grouped_categorical(rng, persona[pages], persona_table(config, "page_weights"))
    feats = np.flatnonzero(kind == FEATURE_USED)
    attr[feats] = grouped_categorical(rng, persona[feats], persona_table(config, "feature_weights"))
    searches = np.flatnonzero(kind == SEARCH_PERFORMED)
    attr[searches] = categorical(rng, [1.0] * len(SEARCH_QUERIES), len(searches))
    return attr


def refunds(events: Events, users: Users, config: GeneratorConfig, rng: np.random.Generator) -> Events:
    """Refunds ("Order Refunded", negative revenue) of some orders, 1-14 days later and before the horizon."""
    orders = np.flatnonzero(events.kind == ORDER_COMPLETED)
    user = events.user[orders]
    refunded = orders[rng.random(len(orders)) < persona_table(config, "refund_prob")[users.persona[user]]]
    ts = events.ts[refunded] + rng.integers(DAY_MS, 14 * DAY_MS, len(refunded))
    rows = Events.build(
        events.user[refunded],
        ts,
        ORDER_REFUNDED,
        product=events.product[refunded],
        cents=-events.cents[refunded],
        order=events.order[refunded],
    )
    return rows.take(rows.ts < users.horizon_ms(config.end_ms)[rows.user])


def emails(users: Users, config: GeneratorConfig, rng: np.random.Generator) -> Events:
    """System emails ("Email Sent") from a day after signup until the end, churned or not."""
    first = users.signup_ms + DAY_MS
    span = np.maximum(config.end_ms - first, 0)
    count = rng.poisson(config.email_per_week * span / (7 * DAY_MS))
    user = np.repeat(np.arange(len(users)), count)
    ts = first[user] + (rng.random(len(user)) * span[user]).astype(np.int64)
    attr = categorical(rng, EMAIL_WEIGHTS, len(user))
    return Events.build(user, ts, EMAIL_SENT, attr=attr)
