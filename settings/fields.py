"""How a setting is declared and read: a dataclass field that names its environment variable, unit and meaning.

`setting(...)` declares one; `read_section(cls, environ)` builds a section (a frozen dataclass) from an
environment mapping, converting each value by the field's type and naming the variable in every error.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SettingError(ValueError):
    """An environment variable holds a value the product cannot use; the message names the variable."""


@dataclass(frozen=True)
class Spec:
    """What the docs say of one setting, and how its text is read."""

    env: str
    unit: str
    meaning: str
    minimum: float | None = None
    parse: Callable[[str], Any] | None = None  # text -> value, for types the generic reader does not know
    secret: bool = False  # never shown: the docs say only whether it is set
    default_text: str | None = None  # how the docs show the default when `str(default)` would not say it well


def setting(
    env: str,
    default: Any,
    *,
    meaning: str,
    unit: str = "",
    minimum: float | None = None,
    parse: Callable[[str], Any] | None = None,
    secret: bool = False,
    default_text: str | None = None,
) -> Any:
    """A dataclass field read from the environment variable `env` (blank or unset: `default`)."""
    spec = Spec(env, unit, meaning, minimum, parse, secret, default_text)
    if isinstance(default, dict | list | set):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


def spec_of(field: dataclasses.Field) -> Spec | None:
    """The setting a field declares, or None for a plain field."""
    return field.metadata.get("setting")


def setting_fields(cls: type) -> list[tuple[dataclasses.Field, Spec]]:
    """The fields of a section that are settings, in declaration order."""
    return [(field, spec) for field in dataclasses.fields(cls) if (spec := spec_of(field)) is not None]


def parse_moment(name: str, text: str) -> datetime:
    """An ISO-8601 time from the setting `name`, as an aware UTC datetime (no offset means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise SettingError(f"{name}={text!r} is not an ISO-8601 time") from None


def plain_type(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of `T` or `T | None`."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


def _number(spec: Spec, text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingError(f"{spec.env}={text!r} is not {what}") from None
    if spec.minimum is not None and value < spec.minimum:
        raise SettingError(f"{spec.env}={value} is below its minimum of {spec.minimum:g}")
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(spec: Spec, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise SettingError(f"{spec.env}={text!r} is not true or false (one of {', '.join(_TRUE + _FALSE)})")


def convert(spec: Spec, annotation: Any, text: str) -> Any:
    """The value of a setting from its (stripped, non-empty) text."""
    if spec.parse is not None:
        return spec.parse(text)
    kind, _ = plain_type(annotation)
    if kind is int or kind is float:
        return _number(spec, text, kind)
    if kind is Path:
        return Path(text).expanduser().resolve()
    if kind is datetime:
        return parse_moment(spec.env, text)
    if kind is bool:
        return _boolean(spec, text)
    if typing.get_origin(kind) is tuple:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text


def read_section(cls: type[T], environ: Mapping[str, str], **given: Any) -> T:
    """A section from the environment: each setting set to a non-blank value is read, the rest keep their
    defaults; `given` fills the plain fields (e.g. `data_dir`, shared by every section)."""
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for field, spec in setting_fields(cls):
        text = environ.get(spec.env)
        if text is not None and text.strip():
            values[field.name] = convert(spec, hints[field.name], text.strip())
    return cls(**values)


def variables_set(names: Iterable[str]) -> list[str]:
    """Those of `names` that this process's environment sets to a non-blank value."""
    return [name for name in names if os.environ.get(name, "").strip()]


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with `overrides`, for a child process (the environment itself is left alone)."""
    return {**os.environ, **overrides}


def default_text(field: dataclasses.Field, spec: Spec) -> str:
    """The default as the docs show it."""
    if spec.default_text is not None:
        return spec.default_text
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
