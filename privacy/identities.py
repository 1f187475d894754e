"""Who an erasure or an access request covers: the given user ids and every anonymous id stitched to them.

Stitching follows stg_events: an anonymous id belongs to the first user it was seen with (the earliest event that
carries both ids, by event time and message id). The events of a subject are then those whose user_id is one of the
ids, and those with no user_id whose anonymous_id is stitched to one of them. An event of another signed-in user
that carries a stitched anonymous id (a shared device) stays: it is that user's event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

MAX_ID_CHARS = 2048


@dataclass(frozen=True)
class Subject:
    """The ids one request covers."""

    user_ids: frozenset[str]
    anonymous_ids: frozenset[str]

    @property
    def all_ids(self) -> frozenset[str]:
        return self.user_ids | self.anonymous_ids


def parse_user_ids(text: str | Iterable[str]) -> list[str]:
    """User ids from `id1,id2` (or a list), stripped, blanks and repeats dropped; raises ValueError on none or on an
    id beyond MAX_ID_CHARS."""
    items = text.split(",") if isinstance(text, str) else list(text)
    ids: list[str] = []
    for item in items:
        value = item.strip()
        if not value:
            continue
        if len(value) > MAX_ID_CHARS:
            raise ValueError(f"a user id of {len(value)} characters is beyond the bound of {MAX_ID_CHARS}")
        if value not in ids:
            ids.append(value)
    if not ids:
        raise ValueError("no user id given (USERS=id1,id2)")
    return ids


STITCHED_SQL = """
with links as (
    select anonymous_id, arg_min(user_id, (timestamp, message_id)) as linked_user_id
    from raw.events
    where anonymous_id is not null and user_id is not null
      and anonymous_id in (
          select anonymous_id from raw.events where user_id in (select id from subject_user_ids)
      )
    group by anonymous_id
)
select anonymous_id from links where linked_user_id in (select id from subject_user_ids)
"""


def resolve(con: duckdb.DuckDBPyConnection, user_ids: Iterable[str]) -> Subject:
    """The subject of `user_ids` in the warehouse open on `con` (raw.events must exist)."""
    users = sorted(set(user_ids))
    con.execute("create or replace temp table subject_user_ids (id varchar)")
    con.executemany("insert into subject_user_ids values (?)", [[value] for value in users])
    anonymous = {row[0] for row in con.execute(STITCHED_SQL).fetchall()}
    con.execute("drop table subject_user_ids")
    return Subject(frozenset(users), frozenset(anonymous))


def event_filter(user_column: str = "user_id", anonymous_column: str = "anonymous_id") -> str:
    """SQL predicate for rows of raw.events (or a file read the same way) that belong to the subject; needs the temp
    tables `erase_user_ids (id)` and `erase_anonymous_ids (id)` (see `register`)."""
    return (
        f"({user_column} in (select id from erase_user_ids) or ({user_column} is null and "
        f"{anonymous_column} in (select id from erase_anonymous_ids)))"
    )


def register(con: duckdb.DuckDBPyConnection, subject: Subject) -> None:
    """The temp tables `event_filter` reads."""
    for table, values in (("erase_user_ids", subject.user_ids), ("erase_anonymous_ids", subject.anonymous_ids)):
        con.execute(f"create or replace temp table {table} (id varchar)")
        if values:
            con.executemany(f"insert into {table} values (?)", [[value] for value in sorted(values)])
