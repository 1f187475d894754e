"""Dagster resources whose fields are the settings of settings/catalog.py, read through `dg.EnvVar`.

Each resource class is generated from catalog sections: one string field per setting, named after its environment
variable in lower case, described with its meaning, unit and default. `env_fields(...)` gives a field a
`dg.EnvVar` when the variable is set (resolved at run launch, and never shown in the UI), else leaves the default.
The resource turns its fields back into the sections the plain-Python packages take (`Settings.from_env` over the
fields' values), so a value is parsed and checked in one place whether it came from the environment, the launchpad
or a test.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from settings import Settings
from settings.fields import default_text, setting_fields, spec_of, variables_set


def field_name(env: str) -> str:
    """The resource field of an environment variable: its name in lower case."""
    return env.lower()


def default_value(field: dataclasses.Field) -> str:
    """A setting's default as the text the catalogue reads back to it ("" for none), shown in the Dagster UI."""
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _section_fields(*sections: type) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for section in sections:
        for field, spec in setting_fields(section):
            about = f"{spec.meaning} ({spec.unit}; default {default_text(field, spec)}). Env: {spec.env}"
            fields[field_name(spec.env)] = (str, Field(default=default_value(field), description=about))
    return fields


def settings_resource_base(name: str, *sections: type, extra: tuple[Any, ...] = ()) -> type[dg.ConfigurableResource]:
    """A ConfigurableResource base class with a string field for every setting of `sections` (and of the
    dataclass fields `extra`, such as Settings' own DATA_DIR)."""
    fields = _section_fields(*sections)
    for field in extra:
        spec = spec_of(field)
        fields[field_name(spec.env)] = (str, Field(default="", description=f"{spec.meaning}. Env: {spec.env}"))
    return create_model(name, __base__=dg.ConfigurableResource, **fields)


class SettingsFields:
    """Mixin for the generated resources: their fields as an environment mapping."""

    def environment(self) -> dict[str, str]:
        """{ENV_NAME: text} of every field that holds a value (an unresolved EnvVar is read here)."""
        values: dict[str, str] = {}
        for name in type(self).model_fields:  # type: ignore[attr-defined]
            value = getattr(self, name)
            text = value.get_value("") if isinstance(value, dg.EnvVar) else value
            if text:
                values[name.upper()] = text
        return values

    def settings(self) -> Settings:
        """Every section, from this resource's values (the defaults of settings/catalog.py where it has none)."""
        return _parsed(tuple(sorted(self.environment().items())))


@functools.lru_cache(maxsize=32)
def _parsed(environment: tuple[tuple[str, str], ...]) -> Settings:
    # an asset asks for its paths and sections many times a step; the same values always parse the same way
    return Settings.from_env(dict(environment))


def env_fields(resource: type[dg.ConfigurableResource]) -> dict[str, dg.EnvVar]:
    """`dg.EnvVar` for each of the resource's settings that the environment sets, to construct the resource with
    (an unset one keeps its default: Dagster refuses to launch a run with an EnvVar that is not set)."""
    names = [name.upper() for name in resource.model_fields]  # type: ignore[attr-defined]
    return {field_name(env): dg.EnvVar(env) for env in variables_set(names)}
