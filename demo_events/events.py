"""Clean events as columns of numpy arrays, and the codes of event kinds."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Event kinds. PAGE renders as a "page" call (web, and every anonymous visit) or a "screen" call (apps).
PAGE = 0
IDENTIFY = 1
SIGNED_UP = 2
PRODUCT_VIEWED = 3
PRODUCT_ADDED = 4
ORDER_COMPLETED = 5
ORDER_REFUNDED = 6
FEATURE_USED = 7
SEARCH_PERFORMED = 8
EXPERIMENT_VIEWED = 9
EMAIL_SENT = 10
COUPON_APPLIED = 11
PLAN_UPGRADED = 12  # the factorial experiment's goal; only planted conversions emit it

# Track event names as apps send them, by kind (None: not a track call).
EVENT_NAMES: tuple[str | None, ...] = (
    None,
    None,
    "Signed Up",
    "Product Viewed",
    "Product Added",
    "Order Completed",
    "Order Refunded",
    "Feature Used",
    "Search Performed",
    "Experiment Viewed",
    "Email Sent",
    "Coupon Applied",
    "Plan Upgraded",
)
# Segment call types of clean rows (defective rows may carry an unknown type instead).
CALL_TYPES = ("track", "page", "screen", "identify")

# Session event kinds drawn from a persona's mix, in the order of `Persona.mix`.
SESSION_KINDS = np.array([PAGE, PRODUCT_VIEWED, PRODUCT_ADDED, FEATURE_USED, SEARCH_PERFORMED], dtype=np.int8)


@dataclass
class Events:
    """One row per clean event; `attr` is the page, feature, query, coupon, variant or email by kind (for
    Experiment Viewed: 0-1 the A/B variant, 2-5 the factorial cell + 2)."""

    user: np.ndarray  # int32, global user index
    ts: np.ndarray  # int64, event time in ms since the epoch (UTC)
    kind: np.ndarray  # int8
    anon: np.ndarray  # bool, before signup: only anonymous_id
    first: np.ndarray  # bool, in the user's first session: carries the first-touch campaign
    attr: np.ndarray  # int16, -1 when unused
    product: np.ndarray  # int16, -1 when none
    cents: np.ndarray  # int64, revenue in cents (negative on refunds), 0 when none
    order: np.ndarray  # int64, order number, -1 when none

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def build(cls, user: np.ndarray, ts: np.ndarray, kind: int | np.ndarray, **columns: object) -> Events:
        """Rows with the given columns; unspecified ones get their 'none' value."""
        n = len(ts)
        defaults = {"anon": False, "first": False, "attr": -1, "product": -1, "cents": 0, "order": -1}
        values = {**defaults, **columns}
        return cls(
            user=np.asarray(user, dtype=np.int32),
            ts=np.asarray(ts, dtype=np.int64),
            kind=_column(kind, n, np.int8),
            anon=_column(values["anon"], n, np.bool_),
            first=_column(values["first"], n, np.bool_),
            attr=_column(values["attr"], n, np.int16),
            product=_column(values["product"], n, np.int16),
            cents=_column(values["cents"], n, np.int64),
            order=_column(values["order"], n, np.int64),
        )

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        """All rows of `parts`, in order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def take(self, index: np.ndarray) -> Events:
        """The rows at `index` (positions or a boolean mask)."""
        return Events(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _column(value: object, n: int, dtype: type) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    return np.full(n, value, dtype=dtype)


def call_types(kind: np.ndarray, anon: np.ndarray, app: np.ndarray) -> np.ndarray:
    """Index into CALL_TYPES per row: views are "screen" calls in apps once signed up, else "page" calls."""
    out = np.zeros(len(kind), dtype=np.int8)
    out[kind == PAGE] = 1
    out[(kind == PAGE) & app & ~anon] = 2
    out[kind == IDENTIFY] = 3
    return out
