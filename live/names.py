"""Event names as the warehouse spells them (dbt macro normalize_event_name, stg_events' page and screen rules)."""

from __future__ import annotations

import re

_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_EDGE_UNDERSCORES = re.compile(r"^_+|_+$")
_NAMED_BY_TYPE = {"page": "page_viewed", "screen": "screen_viewed"}


def normalize_event_name(name: str) -> str:
    """'Product Added' and 'productAdded' -> 'product_added'; '' when nothing is left."""
    text = _CAMEL_BOUNDARY.sub(r"\1_\2", name.strip())
    return _EDGE_UNDERSCORES.sub("", _NOT_WORD.sub("_", text).lower())


def event_name(kind: str, sent_name: object) -> str:
    """The warehouse's event_name of an event of type `kind` (track: its normalised name; page: page_viewed; ...)."""
    if kind == "track":
        return (normalize_event_name(sent_name) if isinstance(sent_name, str) else "") or "(invalid)"
    return _NAMED_BY_TYPE.get(kind, kind)
