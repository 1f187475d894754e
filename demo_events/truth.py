"""Ground truth of a generated data set: what was planted, counted, for tests of the warehouse."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from demo_events import events as ev
from demo_events.arrival import Arrival
from demo_events.config import (
    CHANNELS,
    COUNTRIES,
    DEVICES,
    FACTORIAL_VARIANTS,
    FACTORS,
    PERSONAS,
    PLANS,
    PREFERRED_BLOCK,
    PREFERRED_FIRST,
    VARIANTS,
    GeneratorConfig,
)
from demo_events.dirty import CODE, DEFECTS, REJECT_REASONS, Defects
from demo_events.ids import anonymous_ids, user_ids
from demo_events.layout import Layout
from demo_events.simulate import Simulation
from demo_events.writer import write_atomic

NON_ACTIVITY_KINDS = (ev.IDENTIFY, ev.EMAIL_SENT)
DEFINITIONS = {
    "expected_unique_events": "clean events; every duplicate row repeats one of them (same message id)",
    "activity": "every clean event except identify and Email Sent; none at or after churn_at",
    "Email Sent": "system event, sent until the end to churned users too",
    "exposure": "a user's first Experiment Viewed event (later views repeat it)",
    "conversion": "an Order Completed with exposed_at < timestamp <= exposed_at + conversion_window_days",
    "pre_period_buyers": "exposed users with an Order Completed in the pre_period_days before exposed_at convert "
    "pre_buyer_rate_ratio times as often as the others; the average rate per variant stays p_control / p_treatment",
    "factorial": "the A/B test's exposed users also see the 2x2 factorial experiment (its own first Experiment "
    "Viewed, seconds later); conversion is a Plan Upgraded in the same window; log-odds of converting = "
    "base + tour + badge + tour:badge, each effect counted where its factors are on",
    "churn_at": "signup_at + 1 hour + exponential(lifetime_days); churned_by_end: churn_at <= end",
    "late_arrivals": "clean events whose received_at is 1-5 days after their timestamp; they load normally",
}


@dataclass
class Truth:
    """Counts and parameters of what the generator planted (also written as truth.json)."""

    config: dict[str, object]
    users: int
    clean_events: int
    rows_written: int
    expected_unique_events: int
    expected_duplicate_rows: int
    expected_rejects: dict[str, int]
    reject_reasons: dict[str, str]
    dirty_rows: dict[str, int]
    duplicates: dict[str, int]
    late_arrivals: int
    events_by_name: dict[str, int]
    emails_after_churn: int
    personas: dict[str, dict[str, float]]
    channels: dict[str, dict[str, float]]
    countries: dict[str, dict[str, float]]
    experiment: dict[str, object]
    files: list[dict[str, object]]
    definitions: dict[str, str]
    factorial: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Indented JSON with keys in a stable order."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @classmethod
    def load(cls, path: Path) -> Truth:
        """Read a truth.json back."""
        return cls(**orjson.loads(path.read_bytes()))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _group_means(group: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(group, minlength=k)
    return np.bincount(group, weights=values, minlength=k) / np.maximum(counts, 1)


def build_truth(
    config: GeneratorConfig,
    users_requested: int,
    sim: Simulation,
    arrival: Arrival,
    defects: Defects,
    layout: Layout,
) -> Truth:
    """Count everything the tests compare against."""
    users, events, assign = sim.users, sim.events, sim.assignment
    n_users, n_clean = len(users), len(events)
    churned = users.churn_ms <= config.end_ms
    activity = ~np.isin(events.kind, NON_ACTIVITY_KINDS)
    per_user = np.bincount(events.user, minlength=n_users)
    active_per_user = np.bincount(events.user[activity], minlength=n_users)
    is_order = events.kind == ev.ORDER_COMPLETED
    is_email = events.kind == ev.EMAIL_SENT
    orders_per_user = np.bincount(events.user[is_order], minlength=n_users)

    names = config.persona_names()
    weight = sum(config.persona_shares[name] for name in names)
    k = len(names)
    order_persona = users.persona[events.user[is_order]]
    personas = {
        name: {
            "users": int((users.persona == p).sum()),
            "share_configured": config.persona_shares[name] / weight,
            "share_realised": float((users.persona == p).mean()),
            "mean_activity_rate": float(_group_means(users.persona, users.activity_rate, k)[p]),
            "mean_lifetime_days": float(_group_means(users.persona, users.lifetime_days, k)[p]),
            "churned_by_end_share": float(_group_means(users.persona, churned, k)[p]),
            "mean_events": float(_group_means(users.persona, per_user, k)[p]),
            "mean_activity_events": float(_group_means(users.persona, active_per_user, k)[p]),
            "mean_orders": float(_group_means(users.persona, orders_per_user, k)[p]),
            "mean_order_value": float(_group_means(order_persona, events.cents[is_order] / 100, k)[p]),
            "coupon_order_share": float(_group_means(order_persona, events.attr[is_order] >= 0, k)[p]),
            # the block of products the persona favours (planted for recommendations), as product ids
            "preferred_products": [
                f"prod_{PREFERRED_FIRST + list(PERSONAS).index(name) * PREFERRED_BLOCK + 1:03d}",
                f"prod_{PREFERRED_FIRST + (list(PERSONAS).index(name) + 1) * PREFERRED_BLOCK:03d}",
            ],
        }
        for p, name in enumerate(names)
    }

    def by(codes: np.ndarray, catalogue: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
        m = len(catalogue)
        return {
            name: {
                "users": int((codes == c).sum()),
                "lifetime_multiplier": mult,
                "mean_lifetime_days": float(_group_means(codes, users.lifetime_days, m)[c]),
                "churned_by_end_share": float(_group_means(codes, churned, m)[c]),
            }
            for c, (name, (_, mult)) in enumerate(catalogue.items())
        }

    app = users.device[events.user] != DEVICES.index("desktop")
    calls = ev.call_types(events.kind, events.anon, app)
    label = np.where(calls == 0, events.kind.astype(np.int16) + 4, calls)  # 0-3: call types, 4+: track kinds
    counts = np.bincount(label, minlength=4 + len(ev.EVENT_NAMES))
    labels = [*ev.CALL_TYPES, *(name or "" for name in ev.EVENT_NAMES)]
    events_by_name = {labels[i]: int(c) for i, c in enumerate(counts) if c and i != 0}

    dirty = defects.counts()
    rows_written = len(layout.order)
    position = np.empty(rows_written, dtype=np.int64)
    position[layout.order] = np.arange(rows_written)
    dup = np.flatnonzero(defects.code == CODE["duplicate"])
    same_file = position[n_clean + dup] // config.file_rows == position[defects.src[dup]] // config.file_rows

    exposed = assign.variant >= 0
    files = layout.files
    experiment: dict[str, object] = {
        "experiment_id": config.experiment_id,
        "variants": list(VARIANTS),
        "start": _iso(config.experiment_start_ms),
        "exposure_deadline": _iso(config.exposure_deadline_ms),
        "conversion_window_days": config.conversion_window_days,
        "p_control": config.p_control,
        "p_treatment": config.p_treatment,
        "true_lift": config.lift,
        "pre_period_days": config.pre_period_days,
        "pre_buyer_rate_ratio": config.pre_buyer_rate_ratio,
        "exposed": {},
        "converted": {},
        "conversion_rate": {},
    }
    for v, variant in enumerate(VARIANTS):
        members = assign.variant == v
        experiment["exposed"][variant] = int(members.sum())
        experiment["converted"][variant] = int((assign.converted[members] == 1).sum())
        experiment["conversion_rate"][variant] = experiment["converted"][variant] / max(int(members.sum()), 1)
    rates = experiment["conversion_rate"]
    experiment["realised_lift"] = rates["treatment"] / rates["control"] - 1 if rates["control"] else None
    experiment["exposed_users"] = int(exposed.sum())

    cells = assign.factorial_cell
    tour, badge, both = config.factorial_effects
    factorial: dict[str, object] = {
        "experiment_id": config.factorial_id,
        "factors": list(FACTORS),
        "variants": list(FACTORIAL_VARIANTS),
        "control_variant": FACTORIAL_VARIANTS[0],
        "goal_event": "Plan Upgraded",
        "conversion_window_days": config.conversion_window_days,
        "base_log_odds": config.factorial_base_log_odds,
        "log_odds_effects": {"tour": tour, "badge": badge, "tour:badge": both},
        "planted_probability": dict(zip(FACTORIAL_VARIANTS, config.factorial_probabilities(), strict=True)),
        "exposed": {v: int((cells == c).sum()) for c, v in enumerate(FACTORIAL_VARIANTS)},
        "converted": {
            v: int((assign.factorial_converted[cells == c] == 1).sum()) for c, v in enumerate(FACTORIAL_VARIANTS)
        },
    }

    return Truth(
        config={**config.to_dict(), "users_requested": users_requested},
        users=n_users,
        clean_events=n_clean,
        rows_written=rows_written,
        expected_unique_events=n_clean,
        expected_duplicate_rows=dirty["duplicate"],
        expected_rejects={kind: dirty[kind] for kind in DEFECTS[2:]},
        reject_reasons=dict(REJECT_REASONS),
        dirty_rows=dirty,
        duplicates={"same_file": int(same_file.sum()), "later_file": int((~same_file).sum())},
        late_arrivals=int(arrival.late.sum()),
        events_by_name=events_by_name,
        emails_after_churn=int((is_email & (events.ts >= users.churn_ms[events.user])).sum()),
        personas=personas,
        channels=by(users.channel, CHANNELS),
        countries=by(users.country, COUNTRIES),
        experiment=experiment,
        files=[{"name": f.name, "format": f.fmt, "camel_case": f.camel, "rows": f.rows} for f in files],
        definitions=dict(DEFINITIONS),
        factorial=factorial,
    )


def users_table(config: GeneratorConfig, sim: Simulation) -> pa.Table:
    """One row per user with everything planted about them."""
    users, events, assign = sim.users, sim.events, sim.assignment
    n = len(users)
    index = np.arange(n)
    activity = ~np.isin(events.kind, NON_ACTIVITY_KINDS)

    def labels(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
        return pc.take(pa.array(list(names)), pa.array(codes.astype(np.int32)))

    def stamp(ms: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        mask = None if valid is None else ~valid
        return pa.array(ms, type=pa.timestamp("ms", tz="UTC"), mask=mask)

    exposed = assign.variant >= 0
    return pa.table(
        {
            "user_id": user_ids(index),
            "anonymous_id": anonymous_ids(index, config.seed),
            "persona": labels(users.persona, config.persona_names()),
            "channel": labels(users.channel, list(CHANNELS)),
            "country": labels(users.country, list(COUNTRIES)),
            "device": labels(users.device, DEVICES),
            "plan": labels(users.plan, PLANS),
            "signup_at": stamp(users.signup_ms),
            "churn_at": stamp(users.churn_ms),
            "churned_by_end": pa.array(users.churn_ms <= config.end_ms),
            "activity_rate": pa.array(users.activity_rate),
            "lifetime_days": pa.array(users.lifetime_days),
            "variant": pa.array(np.array(VARIANTS)[np.maximum(assign.variant, 0)], mask=~exposed),
            "exposed_at": stamp(assign.exposed_ms, exposed),
            "converted": pa.array(assign.converted == 1, mask=~exposed),
            "factorial_variant": pa.array(
                np.array(FACTORIAL_VARIANTS)[np.maximum(assign.factorial_cell, 0)], mask=assign.factorial_cell < 0
            ),
            "factorial_converted": pa.array(assign.factorial_converted == 1, mask=assign.factorial_cell < 0),
            "events": pa.array(np.bincount(events.user, minlength=n)),
            "activity_events": pa.array(np.bincount(events.user[activity], minlength=n)),
            "orders": pa.array(np.bincount(events.user[events.kind == ev.ORDER_COMPLETED], minlength=n)),
        }
    )


def write_truth(truth: Truth, users: pa.Table, truth_dir: Path) -> None:
    """users.parquet and truth.json, each written atomically."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(truth_dir / "users.parquet", lambda tmp: pq.write_table(users, tmp, compression="zstd"))
    write_atomic(truth_dir / "truth.json", lambda tmp: tmp.write_bytes(truth.to_json()))
