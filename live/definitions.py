"""Live segments and triggers, defined in a yml file an analyst edits (LIVE_DEFINITIONS_FILE; the default is
live/definitions.yml), checked when read: a bad value raises DefinitionError naming the segment or trigger and the
field. docs/live.md describes the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_FILE = Path(__file__).resolve().parent / "definitions.yml"
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
DURATION_RE = re.compile(r"([1-9][0-9]{0,5})(s|m|h|d)")
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_WINDOW_MS = 86_400_000  # the state keeps a day of events
OPERATORS = ("eq", "neq", "in", "gt", "gte", "lt", "lte", "is_set")
TRAITS = ("rfm_segment", "lifecycle_stage", "cluster_name", "churn_risk_tier")
TRIGGER_KINDS = ("cart_abandoned", "segment_entered")


class DefinitionError(ValueError):
    """A live segment or trigger that cannot be used; the message names it and the field."""


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    operator: str
    value: str | float | tuple[str, ...] | None

    def passes(self, properties: dict[str, str]) -> bool:
        """True when the event's (stored, text) properties pass the filter."""
        text = properties.get(self.property)
        if self.operator == "is_set":
            return text is not None
        if text is None:
            return self.operator == "neq"
        if self.operator == "eq":
            return text == self.value
        if self.operator == "neq":
            return text != self.value
        if self.operator == "in":
            return text in self.value  # type: ignore[operator]
        try:
            number = float(text)
        except ValueError:
            return False
        bound = float(self.value)  # type: ignore[arg-type]
        return {"gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound}[
            self.operator
        ]


@dataclass(frozen=True)
class Condition:
    """Either `min_count` events named `event` (passing `filters`) in the last `window_ms`, or a batch trait in
    `values`."""

    event: str | None = None
    window_ms: int = 0
    min_count: int = 1
    filters: tuple[PropertyFilter, ...] = ()
    trait: str | None = None
    values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    combine: str  # all (AND) or any (OR)
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Trigger:
    name: str
    kind: str  # cart_abandoned or segment_entered
    after_ms: int = 0  # cart_abandoned: no order this long after the last product added
    segment: str | None = None  # segment_entered: which


@dataclass(frozen=True)
class Definitions:
    segments: tuple[Segment, ...]
    triggers: tuple[Trigger, ...]

    @property
    def properties(self) -> tuple[str, ...]:
        """The event properties the segments' filters read (the consumer keeps these of each event)."""
        return tuple(sorted({f.property for s in self.segments for c in s.conditions for f in c.filters}))

    @property
    def cart_abandoned_after_ms(self) -> int | None:
        """The shortest wait of a cart_abandoned trigger (None: no such trigger)."""
        waits = [t.after_ms for t in self.triggers if t.kind == "cart_abandoned"]
        return min(waits) if waits else None


def _duration(text: object, where: str) -> int:
    match = DURATION_RE.fullmatch(str(text).strip()) if isinstance(text, str | int) else None
    if not match:
        raise DefinitionError(f"{where} {text!r} is not a duration such as 90s, 10m, 1h or 1d")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise DefinitionError(f"{where} {value!r} is not a name (lower case letters, digits and _, at most 63)")
    return value


def _filter(raw: object, where: str) -> PropertyFilter:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where} is not a mapping of property, op and value")
    prop = raw.get("property")
    if not isinstance(prop, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", prop):
        raise DefinitionError(f"{where}.property {prop!r} is not a top-level property name")
    operator = raw.get("op", "eq")
    if operator not in OPERATORS:
        raise DefinitionError(f"{where}.op {operator!r} is not one of {', '.join(OPERATORS)}")
    value = raw.get("value")
    if operator == "is_set":
        return PropertyFilter(prop, operator, None)
    if operator == "in":
        if not isinstance(value, list) or not value:
            raise DefinitionError(f"{where}.value must be a non-empty list for op in")
        return PropertyFilter(prop, operator, tuple(str(v) for v in value))
    if operator in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DefinitionError(f"{where}.value {value!r} is not a number (op {operator})")
        return PropertyFilter(prop, operator, float(value))
    if value is None or isinstance(value, dict | list):
        raise DefinitionError(f"{where}.value {value!r} is not a single value")
    return PropertyFilter(prop, operator, str(value).lower() if isinstance(value, bool) else str(value))


def _condition(raw: object, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where} is not a mapping")
    if "trait" in raw:
        trait = raw["trait"]
        if trait not in TRAITS:
            raise DefinitionError(f"{where}.trait {trait!r} is not one of {', '.join(TRAITS)}")
        values = raw.get("in")
        if not isinstance(values, list) or not values:
            raise DefinitionError(f"{where}.in must be a non-empty list of the trait's values")
        return Condition(trait=trait, values=frozenset(str(v) for v in values))
    event = _name(raw.get("event"), f"{where}.event")
    window_ms = _duration(raw.get("window"), f"{where}.window")
    if window_ms > MAX_WINDOW_MS:
        raise DefinitionError(f"{where}.window is longer than a day (the live state keeps a day of events)")
    min_count = raw.get("min_count", 1)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or not 1 <= min_count <= 10_000:
        raise DefinitionError(f"{where}.min_count {min_count!r} is not a whole number from 1 to 10000")
    filters = raw.get("where", [])
    if not isinstance(filters, list):
        raise DefinitionError(f"{where}.where is not a list of filters")
    return Condition(
        event=event,
        window_ms=window_ms,
        min_count=min_count,
        filters=tuple(_filter(f, f"{where}.where[{i}]") for i, f in enumerate(filters)),
    )


def _segment(raw: object, index: int) -> Segment:
    if not isinstance(raw, dict):
        raise DefinitionError(f"segments[{index}] is not a mapping")
    name = _name(raw.get("name"), f"segments[{index}].name")
    where = f"live segment '{name}':"
    combine = [key for key in ("all", "any") if key in raw]
    if len(combine) != 1:
        raise DefinitionError(f"{where} give exactly one of all (AND) or any (OR)")
    conditions = raw[combine[0]]
    if not isinstance(conditions, list) or not conditions:
        raise DefinitionError(f"{where} {combine[0]} must be a non-empty list of conditions")
    return Segment(
        name=name,
        description=str(raw.get("description", "")),
        combine=combine[0],
        conditions=tuple(_condition(c, f"{where} {combine[0]}[{i}]") for i, c in enumerate(conditions)),
    )


def _trigger(raw: object, index: int, segments: set[str]) -> Trigger:
    if not isinstance(raw, dict):
        raise DefinitionError(f"triggers[{index}] is not a mapping")
    name = _name(raw.get("name"), f"triggers[{index}].name")
    where = f"live trigger '{name}':"
    kind = raw.get("kind")
    if kind not in TRIGGER_KINDS:
        raise DefinitionError(f"{where} kind {kind!r} is not one of {', '.join(TRIGGER_KINDS)}")
    if kind == "cart_abandoned":
        return Trigger(name, kind, after_ms=_duration(raw.get("after"), f"{where} after"))
    segment = raw.get("segment")
    if segment not in segments:
        raise DefinitionError(f"{where} segment {segment!r} is not a live segment of this file")
    return Trigger(name, kind, segment=segment)


def parse_definitions(text: str) -> Definitions:
    """The segments and triggers of a yml document; raises DefinitionError."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise DefinitionError(f"not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DefinitionError("the file must be a mapping with segments and triggers")
    raw_segments = document.get("segments") or []
    raw_triggers = document.get("triggers") or []
    if not isinstance(raw_segments, list) or not isinstance(raw_triggers, list):
        raise DefinitionError("segments and triggers must be lists")
    segments = tuple(_segment(raw, i) for i, raw in enumerate(raw_segments))
    names = [s.name for s in segments]
    if len(set(names)) != len(names):
        raise DefinitionError(f"live segment names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    triggers = tuple(_trigger(raw, i, set(names)) for i, raw in enumerate(raw_triggers))
    trigger_names = [t.name for t in triggers]
    if len(set(trigger_names)) != len(trigger_names):
        raise DefinitionError("live trigger names repeat")
    return Definitions(segments, triggers)


def load_definitions(path: Path | None) -> Definitions:
    """The definitions of `path` (None: live/definitions.yml)."""
    path = path or DEFAULT_FILE
    try:
        text = path.read_text()
    except OSError as error:
        raise DefinitionError(f"cannot read {path}: {error.strerror}") from None
    try:
        return parse_definitions(text)
    except DefinitionError as error:
        raise DefinitionError(f"{path}: {error}") from None
