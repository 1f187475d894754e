"""Pseudonymisation at ingestion (off by default): one file's stage table is changed before it loads.

- PSEUDONYMISE_IDS: user_id and anonymous_id become keyed_hash(key, "pseudonym", id);
- PRIVACY_DROP_FIELDS (`traits.x`, `context.x`): the top-level key x is removed from traits or context;
- PRIVACY_HASH_FIELDS: the value of x becomes keyed_hash(key, "field", value as text); a JSON null stays null.

Only rows that will load (reason is null) are changed; NULL or non-object traits and context are left alone. Values
are hashed in Python once per distinct value and joined back from a small registered table. A rejected row keeps its
raw text in raw.events_rejected.raw_line, which would hold in clear what these settings remove: when any of them is
set, rejected rows keep no raw_line (NULL), only their line number and reason. Nothing runs when all are off.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import duckdb
import orjson
import pyarrow as pa

from privacy.keys import FIELD, PSEUDONYM, keyed_hashes, privacy_key
from settings import PrivacySettings

_MAPPING = "privacy_mapping"  # the registered {clear: hashed} table
_ID_COLUMNS = ("user_id", "anonymous_id")
_JSON_COLUMNS = ("traits", "context")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def active(settings: PrivacySettings) -> bool:
    """Whether ingestion changes anything: ids pseudonymised or some field dropped or hashed."""
    return settings.pseudonymise_ids or bool(settings.drop_fields) or bool(settings.hash_fields)


def pseudonymise(con: duckdb.DuckDBPyConnection, stage: str, settings: PrivacySettings) -> None:
    """Every transform the settings ask for, on `stage` (inside the caller's transaction)."""
    if not active(settings):
        return
    if settings.pseudonymise_ids:
        pseudonymise_ids(con, stage, settings)
    drop_fields(con, stage, settings)
    hash_fields(con, stage, settings)
    redact_rejected(con, stage, settings)


def pseudonymise_ids(con: duckdb.DuckDBPyConnection, stage: str, settings: PrivacySettings) -> None:
    """user_id and anonymous_id of the rows to load replaced by their keyed hash (purpose "pseudonym")."""
    table = _checked(stage)
    ids = con.execute(
        f"select user_id from {table} where reason is null and user_id is not null "
        f"union select anonymous_id from {table} where reason is null and anonymous_id is not null"
    ).fetchall()
    if not ids:
        return
    mapping = keyed_hashes(privacy_key(settings), PSEUDONYM, (row[0] for row in ids))
    with _registered(con, mapping):
        for column in _ID_COLUMNS:
            con.execute(
                f"update {table} set {column} = m.hashed from {_MAPPING} as m "
                f"where {table}.reason is null and {table}.{column} = m.clear"
            )


def drop_fields(con: duckdb.DuckDBPyConnection, stage: str, settings: PrivacySettings) -> None:
    """Each PRIVACY_DROP_FIELDS key removed from the traits or context object of the rows to load."""
    table = _checked(stage)
    for path in settings.drop_fields:
        column, name = _field(path)
        # RFC 7396: a null in the patch removes the key; only objects are patched (NULL would become the patch)
        con.execute(
            f"update {table} set {column} = json_merge_patch({column}, $patch::json) "
            f"where reason is null and json_type({column}) = 'OBJECT' and json_exists({column}, $pointer)",
            {"patch": orjson.dumps({name: None}).decode(), "pointer": _pointer(name)},
        )


def hash_fields(con: duckdb.DuckDBPyConnection, stage: str, settings: PrivacySettings) -> None:
    """Each PRIVACY_HASH_FIELDS value replaced by the keyed hash (purpose "field") of its text."""
    table = _checked(stage)
    for path in settings.hash_fields:
        column, name = _field(path)
        pointer = _pointer(name)
        values = con.execute(
            f"select distinct json_extract_string({column}, $pointer) from {table} "
            f"where reason is null and json_type({column}) = 'OBJECT' and json_type({column}, $pointer) <> 'NULL'",
            {"pointer": pointer},
        ).fetchall()
        if not values:
            continue
        mapping = keyed_hashes(privacy_key(settings), FIELD, (row[0] for row in values))
        with _registered(con, mapping):
            con.execute(
                f"update {table} set {column} = json_merge_patch({table}.{column}, json_object($name, m.hashed)) "
                f"from {_MAPPING} as m where {table}.reason is null and json_type({table}.{column}) = 'OBJECT' "
                f"and json_type({table}.{column}, $pointer) <> 'NULL' "
                f"and json_extract_string({table}.{column}, $pointer) = m.clear",
                {"name": name, "pointer": pointer},
            )


def redact_rejected(con: duckdb.DuckDBPyConnection, stage: str, settings: PrivacySettings) -> None:
    """raw_line of rejected rows set to NULL when any setting is on (it holds the ids and fields in clear)."""
    if active(settings):
        con.execute(f"update {_checked(stage)} set raw_line = null where reason is not null and raw_line is not null")


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, mapping: dict[str, str]) -> Iterator[None]:
    """`{clear: hashed}` registered as the table `privacy_mapping` for the block."""
    clear, hashed = list(mapping), list(mapping.values())
    con.register(_MAPPING, pa.table({"clear": pa.array(clear, pa.string()), "hashed": pa.array(hashed, pa.string())}))
    try:
        yield
    finally:
        con.unregister(_MAPPING)


def _checked(stage: str) -> str:
    """The stage table's name, checked to be a plain (optionally qualified) identifier: it is written into SQL."""
    if not _TABLE_NAME.fullmatch(stage):
        raise ValueError(f"{stage!r} is not a plain table name")
    return stage


def _field(path: str) -> tuple[str, str]:
    """`traits.email` -> ("traits", "email")."""
    column, _, name = path.partition(".")
    if column not in _JSON_COLUMNS or not name:
        raise ValueError(f"{path!r} is not a field of traits or context")
    return column, name


def _pointer(name: str) -> str:
    """The JSON pointer (RFC 6901) of a top-level key."""
    return "/" + name.replace("~", "~0").replace("/", "~1")
