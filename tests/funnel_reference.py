"""An independent funnel implementation in plain pandas and Python loops, to check int_funnel_journeys against.

It reads the same definitions (the rows of int_funnel_definitions and int_funnel_step_definitions) and the same
activity events, and follows the semantics of docs/funnels.md one user at a time, the obvious way: no SQL, no
shared code with the dbt models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd


@dataclass
class Step:
    event_name: str
    filters: list[tuple[str, str, str | None]]  # (property path, operator, value)


@dataclass
class Funnel:
    funnel_id: str
    window: timedelta
    ordering: str
    entry: str
    breakdown_kind: str
    breakdown_field: str | None
    attribution: str
    attribution_step: int | None
    steps: list[Step]
    exclusions: dict[int, list[Step]]  # after step n


def load_funnels(definitions: pd.DataFrame, steps: pd.DataFrame) -> list[Funnel]:
    """Valid funnels from the two definition tables."""
    funnels = []
    for d in definitions[definitions["config_error"].isna()].itertuples():
        rows = steps[steps["funnel_id"] == d.funnel_id]

        def step_of(group: pd.DataFrame) -> Step:
            filters = [(r.property, r.operator, r.value) for r in group.itertuples() if isinstance(r.property, str)]
            return Step(group["event_name"].iloc[0], filters)

        ordered = rows[rows["step_kind"] == "step"]
        excluded = rows[rows["step_kind"] == "exclusion"]
        funnels.append(
            Funnel(
                funnel_id=d.funnel_id,
                window=timedelta(seconds=int(d.window_seconds)),
                ordering=d.ordering,
                entry=d.entry,
                breakdown_kind=d.breakdown_kind,
                breakdown_field=d.breakdown_field if isinstance(d.breakdown_field, str) else None,
                attribution=d.attribution,
                attribution_step=None if pd.isna(d.attribution_step) else int(d.attribution_step),
                steps=[step_of(g) for _, g in sorted(ordered.groupby("step_number"), key=lambda kv: kv[0])],
                exclusions={int(n): [step_of(g)] for n, g in excluded.groupby("step_number")},
            )
        )
    return funnels


def _field(blob: str | None, path: str) -> object:
    if blob is None:
        return None
    value: object = json.loads(blob)
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def matches(step: Step, event: dict) -> bool:
    """The event has the step's name and passes every filter."""
    if event["event_name"] != step.event_name:
        return False
    for path, operator, value in step.filters:
        text = _text(_field(event["properties"], path))
        if operator == "is_set":
            ok = text is not None
        elif operator == "is_not_set":
            ok = text is None
        elif operator == "eq":
            ok = text == value
        elif operator == "neq":
            ok = text != value
        elif operator == "contains":
            ok = text is not None and value in text
        else:
            number, bound = _number(text), float(value)
            ok = number is not None and {
                "gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound
            }[operator]  # fmt: skip
        if not ok:
            return False
    return True


def _label(event: dict, funnel: Funnel, max_length: int) -> str | None:
    if funnel.breakdown_kind not in ("property", "context"):
        return None
    blob = event["properties"] if funnel.breakdown_kind == "property" else event["context"]
    value = _field(blob, funnel.breakdown_field)
    text = _text(value)
    if isinstance(value, (dict, list)) or (text is not None and len(text) > max_length):
        return "(invalid)"
    return text


def _week(day: datetime) -> datetime:
    return day - timedelta(days=day.weekday())


def _entries(funnel: Funnel, events: list[dict], step_hits: dict[int, list[int]]) -> dict[int, set[str]]:
    """Entry positions and the grains that count each ('all', 'day', 'week', 'month')."""
    if funnel.ordering == "any":
        candidates = sorted({i for hits in step_hits.values() for i in hits})
    else:
        candidates = step_hits.get(1, [])
    entries: dict[int, set[str]] = {}
    if not candidates:
        return entries
    first = candidates[0]
    entries[first] = {"all", "day", "week", "month"}
    if funnel.entry == "recurring":
        seen: dict[str, set] = {"day": set(), "week": set(), "month": set()}
        for i in candidates:
            day = events[i]["event_at"].normalize()
            keys = {"day": day, "week": _week(day), "month": day.replace(day=1)}
            for grain, key in keys.items():
                if key not in seen[grain]:
                    seen[grain].add(key)
                    entries.setdefault(i, set()).add(grain)
    return entries


def _path(funnel: Funnel, events: list[dict], step_hits: dict[int, list[int]], entry: int) -> list[int]:
    """Event positions of the steps the entry reaches, in order."""
    ends = events[entry]["event_at"] + funnel.window
    if funnel.ordering == "any":
        firsts = []
        for n, hits in step_hits.items():
            inside = [i for i in hits if i >= entry and events[i]["event_at"] <= ends]
            if inside:
                firsts.append((inside[0], n))
        return [i for i, _ in sorted(firsts)]
    path = [entry]
    for n in range(2, len(funnel.steps) + 1):
        previous = path[-1]
        if funnel.ordering == "strict":
            following = [previous + 1] if previous + 1 in step_hits[n] else []
        else:
            following = [i for i in step_hits[n] if i > previous]
        following = [i for i in following if events[i]["event_at"] <= ends]
        if not following:
            break
        path.append(following[0])
    return path


def _is_excluded(exclusion_hits: dict[int, list[int]], path: list[int], events: list[dict], ends: datetime) -> bool:
    """An exclusion event after step n and before step n + 1 (before the window ends when n + 1 was not reached)."""
    for n, hits in exclusion_hits.items():
        if n > len(path):
            continue
        for i in hits:
            if i <= path[n - 1]:
                continue
            if (n < len(path) and i < path[n]) or (n >= len(path) and events[i]["event_at"] <= ends):
                return True
    return False


def _attributed(funnel: Funnel, labels: list[str | None]) -> str | None:
    if funnel.breakdown_kind not in ("property", "context"):
        return None
    if funnel.attribution == "first_touch":
        return labels[0] or "(none)"
    if funnel.attribution == "last_touch":
        return labels[-1] or "(none)"
    if funnel.attribution_step > len(labels):
        return "(not reached)"
    return labels[funnel.attribution_step - 1] or "(none)"


def user_journeys(funnel: Funnel, user_id: str, events: list[dict], max_length: int = 100) -> list[dict]:
    """One dict per step reached per entry, for one user's events sorted by (event_at, message_id)."""
    step_hits = {
        n: [i for i in range(len(events)) if matches(step, events[i])] for n, step in enumerate(funnel.steps, start=1)
    }
    exclusion_hits = {
        n: [i for i in range(len(events)) if any(matches(step, events[i]) for step in steps)]
        for n, steps in funnel.exclusions.items()
    }
    rows = []
    for entry, grains in _entries(funnel, events, step_hits).items():
        entered_at = events[entry]["event_at"]
        path = _path(funnel, events, step_hits, entry)
        excluded = _is_excluded(exclusion_hits, path, events, entered_at + funnel.window)
        value = _attributed(funnel, [_label(events[i], funnel, max_length) for i in path])
        for k, i in enumerate(path, start=1):
            at = events[i]["event_at"]
            previous = None if k == 1 else (at - events[path[k - 2]]["event_at"]).total_seconds()
            rows.append(
                {
                    "funnel_id": funnel.funnel_id,
                    "user_id": user_id,
                    "entered_at": entered_at,
                    "is_first_entry": "all" in grains,
                    "is_day_entry": "day" in grains,
                    "is_week_entry": "week" in grains,
                    "is_month_entry": "month" in grains,
                    "step_number": k,
                    "reached_at": at,
                    "seconds_from_previous": previous,
                    "last_step_number": len(path),
                    "is_excluded": excluded,
                    "breakdown_value": value,
                }
            )
    return rows


def journeys(funnels: list[Funnel], events: pd.DataFrame) -> pd.DataFrame:
    """Every user's journeys through every funnel (events: user_id, message_id, event_name, event_at, properties,
    context; the activity events up to as_of)."""
    events = events.sort_values(["user_id", "event_at", "message_id"]).reset_index(drop=True)
    rows: list[dict] = []
    for user_id, own in events.groupby("user_id", sort=True):
        own = own.to_dict("records")
        for funnel in funnels:
            rows += user_journeys(funnel, user_id, own)
    return pd.DataFrame(rows)
