"""A publish switches the serving database and its Parquet exports in together, or not at all: failures injected at
each step leave the previous publish whole and consistent, no temporary litter, and the next publish succeeds."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import serving.publish as publishing
from dashboard.source import ServingCopy
from serving import publish
from serving.publish import read_manifest
from serving.shell import run
from stores.schema import connect


def build_warehouse(path: Path, rows: int) -> None:
    with connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists ml")
        con.execute(f"create or replace table marts.daily_kpis as select range as day from range({rows})")
        con.execute(f"create or replace table marts.user_segments as select 'u' || range as user_id from range({rows})")
        con.execute("create or replace table ml.churn_scores as select 'u1' as user_id, 0.5 as churn_probability")


def publish_from(data_dir: Path, con: object | None = None) -> publishing.PublishResult:
    if con is not None:
        return publish(con, data_dir / "serving.duckdb", data_dir / "exports")  # type: ignore[arg-type]
    with connect(str(data_dir / "warehouse.duckdb")) as warehouse:
        return publish(warehouse, data_dir / "serving.duckdb", data_dir / "exports")


def served(data_dir: Path) -> tuple[str, dict]:
    """The version both stable names resolve into and its manifest, after checking the database, the exports and
    the manifest agree (same publish time, same rows per table)."""
    database, exports = (data_dir / "serving.duckdb").resolve(), (data_dir / "exports").resolve()
    assert (data_dir / "serving.duckdb").is_symlink() and (data_dir / "exports").is_symlink()
    assert database.parent == exports.parent == (data_dir / "published" / "current").resolve()
    manifest = read_manifest(database.parent)
    with duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True) as con:
        (published_at,) = con.execute("select published_at from meta.publish").fetchone()
        rows = {
            name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in manifest["tables"]
        }  # names from the manifest the test just checked: schema.table of this warehouse
    assert str(published_at) == manifest["published_at"]
    assert rows == manifest["tables"]
    files = {f"{p.parent.name}.{p.stem}": pq.read_table(p).num_rows for p in exports.rglob("*.parquet")}
    assert files == {name: rows[name] for name in manifest["exports"]}
    return database.parent.name, manifest


def litter(data_dir: Path) -> list[str]:
    """Hidden (temporary) entries in $DATA_DIR and in published/."""
    return sorted(
        str(p.relative_to(data_dir))
        for folder in (data_dir, data_dir / "published")
        for p in folder.iterdir()
        if p.name.startswith(".")
    )


class FailingConnection:
    """The warehouse connection, but the first statement `fails` picks raises `error`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fails: Callable[[str], bool], error: BaseException) -> None:
        self.con, self.fails, self.error = con, fails, error

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if self.fails(sql):
            raise self.error
        return self.con.execute(sql, *args)


def _fail_statement(prefix: str, error: BaseException) -> Callable[..., FailingConnection]:
    return lambda con, monkeypatch, data_dir: FailingConnection(con, lambda sql: sql.startswith(prefix), error)


def _fail_os(name: str, when: Callable[..., bool], error: OSError) -> Callable[..., None]:
    def inject(con, monkeypatch, data_dir) -> None:
        real = getattr(os, name)

        def failing(*args, **kwargs):
            if when(*args):
                raise error
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, failing)

    return inject


def _is_version(src, dst) -> bool:
    return Path(dst).parent.name == "published" and Path(dst).name != "current"


FAILURES = {
    "copying a table": _fail_statement('create table serving_copy."marts"."user_segments"', duckdb.IOException("x")),
    "exporting Parquet": _fail_statement('copy "marts"."user_segments"', duckdb.IOException("disk full")),
    "interrupted mid-export": _fail_statement('copy "ml"', KeyboardInterrupt()),
    "writing meta.publish": _fail_statement("create table serving_copy.meta.publish", duckdb.IOException("x")),
    "fsync": _fail_os("fsync", lambda fd: True, OSError(errno.EIO, "I/O error")),
    "no space for the version folder": _fail_os(
        "mkdir", lambda path, *a: Path(path).name.endswith(".tmp"), OSError(errno.ENOSPC, "No space left")
    ),
    "renaming the version folder": _fail_os("replace", _is_version, OSError(errno.EIO, "I/O error")),
    "switching current": _fail_os(
        "replace", lambda src, dst: Path(dst).name == "current", OSError(errno.EROFS, "Read-only file system")
    ),
}


@pytest.mark.parametrize("step", list(FAILURES))
def test_a_publish_failing_at_any_step_leaves_the_previous_one_whole(data_dir, monkeypatch, step):
    build_warehouse(data_dir / "warehouse.duckdb", 10)
    publish_from(data_dir)
    before = served(data_dir)
    assert before[1]["tables"]["marts.daily_kpis"] == 10

    build_warehouse(data_dir / "warehouse.duckdb", 25)
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        with monkeypatch.context() as patch:
            proxy = FAILURES[step](con, patch, data_dir)
            with pytest.raises((OSError, duckdb.Error, KeyboardInterrupt)):
                publish(proxy or con, data_dir / "serving.duckdb", data_dir / "exports")
        assert served(data_dir) == before  # the previous database and exports, still together
        assert litter(data_dir) == []
        assert [p.name for p in (data_dir / "published").iterdir() if p.name != "current"] == [before[0]]

        after = publish(con, data_dir / "serving.duckdb", data_dir / "exports")  # the next publish succeeds
    version, manifest = served(data_dir)
    assert version != before[0] and after.version_dir.name == version
    assert manifest["tables"]["marts.daily_kpis"] == 25 and after.tables == manifest["tables"]
    assert litter(data_dir) == []


def test_publishes_keep_the_previous_version_and_an_open_reader_keeps_its_own(data_dir):
    build_warehouse(data_dir / "warehouse.duckdb", 1)
    first = publish_from(data_dir)
    reader = duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True)
    for rows in (2, 3):
        build_warehouse(data_dir / "warehouse.duckdb", rows)
        publish_from(data_dir)
    versions = sorted(p.name for p in (data_dir / "published").iterdir() if p.name != "current")
    assert len(versions) == 2 and first.version_dir.name not in versions  # current and the one before it
    assert served(data_dir)[0] == versions[-1]
    # the first version's folder is gone, but the reader that had it open keeps its inode (Linux) and reads on
    assert reader.execute("select count(*) from marts.daily_kpis").fetchone() == (1,)
    reader.close()
    assert litter(data_dir) == []


def test_a_killed_publish_leaves_litter_that_readers_ignore_and_the_next_publish_removes(data_dir):
    build_warehouse(data_dir / "warehouse.duckdb", 4)
    publish_from(data_dir)
    before = served(data_dir)
    # what a publish killed (SIGKILL, power cut) mid-way leaves: a half-written version, a temporary link
    half = data_dir / "published" / ".20990101T000000000000Z-deadbeef.tmp"
    (half / "exports" / "marts").mkdir(parents=True)
    (half / "serving.duckdb").write_bytes(b"half a database")
    os.symlink("20990101T000000000000Z-deadbeef", data_dir / "published" / ".current.0123456789ab.tmp")
    (data_dir / ".exports.retired").mkdir()  # and what the two-rename swap of older versions could leave
    assert served(data_dir) == before
    publish_from(data_dir)
    assert litter(data_dir) == []
    assert served(data_dir)[0] != before[0]


def _legacy_layout(data_dir: Path, rows: int) -> None:
    """A serving.duckdb file and exports folder as versions before published/ wrote them."""
    build_warehouse(data_dir / "warehouse.duckdb", rows)
    with duckdb.connect(str(data_dir / "serving.duckdb")) as con:
        con.execute("attach ? as w (read_only)", [str(data_dir / "warehouse.duckdb")])
        con.execute("create schema marts")
        con.execute("create table marts.daily_kpis as select * from w.marts.daily_kpis")
        con.execute("create schema meta")
        con.execute("create table meta.publish as select timestamp '2026-01-01 00:00:00' as published_at")
    (data_dir / "exports" / "marts").mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"copy (select range as day from range({rows})) to '{data_dir}/exports/marts/daily_kpis.parquet'")


def test_the_older_layout_is_migrated_without_ever_serving_a_mix(data_dir, monkeypatch):
    _legacy_layout(data_dir, 7)
    reader = duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True)
    build_warehouse(data_dir / "warehouse.duckdb", 8)
    # a publish that fails after the migration: the legacy database and exports are served, together
    with connect(str(data_dir / "warehouse.duckdb")) as con:
        failing = FailingConnection(con, lambda sql: sql.startswith("copy"), duckdb.IOException("disk full"))
        with pytest.raises(duckdb.IOException):
            publish_from(data_dir, failing)
    legacy = (data_dir / "serving.duckdb").resolve().parent
    assert legacy.name.endswith("-legacy") and (data_dir / "exports").resolve().parent == legacy
    assert pq.read_table(data_dir / "exports" / "marts" / "daily_kpis.parquet").num_rows == 7
    assert run("select count(*) as n from marts.daily_kpis", data_dir / "serving.duckdb").count("7") == 1
    assert litter(data_dir) == []

    result = publish_from(data_dir)
    version, manifest = served(data_dir)
    assert manifest["tables"]["marts.daily_kpis"] == 8 and result.version_dir.name == version
    assert legacy.is_dir()  # kept as the previous version
    assert reader.execute("select count(*) from marts.daily_kpis").fetchone() == (7,)
    reader.close()


def test_readers_open_the_symlinked_copy_read_only_and_see_each_new_publish(data_dir):
    build_warehouse(data_dir / "warehouse.duckdb", 5)
    publish_from(data_dir)
    copy = ServingCopy.current()
    identity = copy.identity()
    assert copy.query("select count(*) as n from marts.daily_kpis")["n"].tolist() == [5]
    with pytest.raises(duckdb.Error, match="read-only"):
        copy.query("create table marts.x as select 1")
    build_warehouse(data_dir / "warehouse.duckdb", 6)
    publish_from(data_dir)
    # stat follows the links: the dashboard's cache key changes when only `current` moved
    assert copy.identity() != identity and copy.identity()[0] == (data_dir / "serving.duckdb").resolve().stat().st_ino
    assert copy.query("select count(*) as n from marts.daily_kpis")["n"].tolist() == [6]
    assert "marts.user_segments" in copy.tables()
    assert not list(data_dir.glob("*.wal")) and not list((data_dir / "published").rglob("*.wal"))
