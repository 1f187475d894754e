"""orchestration/defs/dbt/workarounds.py pinned to the dagster-dbt behaviour each workaround relies on.

Each test fails when an upgrade changes that behaviour: the private members still exist with the same shape, the
base class still calls them (seen in real dbt invocations, every subprocess recorded), our resource still runs
dbt once and builds no adapter, and dagster-dbt still seeds but never hands back the parse state.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Iterator, Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource
from dagster_dbt.compat import BaseAdapter
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation, _get_dbt_target_path
from packaging import version

from orchestration.defs.dbt.project import dbt_project
from orchestration.defs.dbt.workarounds import (
    PINNED_VERSIONS,
    WarehouseDbtResource,
    dbt_executable,
    keep_parse_state,
)

PROJECT_DIR = Path(dbt_project.project_dir)
PARSE_STATE = "partial_parse.msgpack"
UPGRADE_HINT = "re-check each workaround's docstring in orchestration/defs/dbt/workarounds.py against the new code"


class Spawn:
    """One subprocess started: its argv, and whether its dbt target folder held a parse state at that moment."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None) -> None:
        self.argv = [str(arg) for arg in argv]
        target = (env or {}).get("DBT_TARGET_PATH")
        self.seeded = target is not None and (Path(target) / PARSE_STATE).exists()


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Spawn]]:
    """Every subprocess.Popen of the test (check_output and run go through it too), recorded, then run as usual."""
    started: list[Spawn] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs) -> None:
            started.append(Spawn([args] if isinstance(args, str | Path) else args, kwargs.get("env")))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    yield started


def resource(cls: type[DbtCliResource]) -> DbtCliResource:
    """The dbt resource as orchestration/defs/resources.py configures it (or dagster-dbt's own, for comparison)."""
    return cls(project_dir=dbt_project, profiles_dir=str(PROJECT_DIR), dbt_executable=dbt_executable())


def test_installed_versions_are_the_ones_the_workarounds_were_written_for():
    installed = {name: installed_version(name) for name in PINNED_VERSIONS}
    assert installed == PINNED_VERSIONS, (
        f"dagster/dagster-dbt/dbt-core changed from {PINNED_VERSIONS} to {installed}: {UPGRADE_HINT}, "
        "run this file, then update PINNED_VERSIONS and the versions named in the docstrings"
    )
    assert (dg.__version__, version.parse(installed["dbt-core"])) == (
        PINNED_VERSIONS["dagster"],
        resource(WarehouseDbtResource)._cli_version,
    )


def test_the_private_members_overridden_still_exist_with_the_same_shape():
    base_version = inspect.getattr_static(DbtCliResource, "_cli_version")
    ours_version = inspect.getattr_static(WarehouseDbtResource, "_cli_version")
    assert isinstance(base_version, cached_property), (
        f"DbtCliResource._cli_version is no cached_property: {UPGRADE_HINT}"
    )
    assert isinstance(ours_version, cached_property)
    assert inspect.signature(base_version.func) == inspect.signature(ours_version.func)
    assert inspect.signature(base_version.func).return_annotation is version.Version

    base_adapter = inspect.signature(DbtCliResource._initialize_dbt_core_adapter)
    ours_adapter = inspect.signature(WarehouseDbtResource._initialize_dbt_core_adapter)
    assert list(base_adapter.parameters) == list(ours_adapter.parameters) == ["self", "args"]
    assert base_adapter.parameters["args"].annotation == ours_adapter.parameters["args"].annotation == Sequence[str]
    assert base_adapter.return_annotation is BaseAdapter


def test_cli_still_takes_the_version_and_the_adapter_from_those_members():
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli, f"DbtCliResource.cli no longer reads _cli_version: {UPGRADE_HINT}"
    assert "self._initialize_dbt_core_adapter(args)" in cli, f"cli no longer builds the adapter there: {UPGRADE_HINT}"
    assert '"--version"' in inspect.getsource(inspect.getattr_static(DbtCliResource, "_cli_version").func)


@pytest.mark.slow
def test_the_overridden_version_is_the_one_dbt_version_reports(spawns):
    """Skipping `dbt --version` changes nothing: the executable we run is the dbt-core this process imports."""
    asked = resource(DbtCliResource)._cli_version
    assert [spawn.argv for spawn in spawns] == [[dbt_executable(), "--version"]]
    assert resource(WarehouseDbtResource)._cli_version == asked
    assert len(spawns) == 1


def dbt_commands(spawns: list[Spawn]) -> list[list[str]]:
    """The dbt command of each spawn, without the executable (`--version` or `build ...`)."""
    assert all(spawn.argv[0] == dbt_executable() for spawn in spawns), [spawn.argv for spawn in spawns]
    return [spawn.argv[1:] for spawn in spawns]


@pytest.mark.slow
def test_a_real_build_through_the_resource_runs_dbt_once_and_builds_no_adapter(data_dir, spawns):
    """dagster-dbt's own resource runs `dbt --version` and builds an adapter for the same build; ours does neither,
    and the events stream as before."""
    args = ["build", "--no-write-json", "--select", "channel_mapping"]

    theirs = resource(DbtCliResource).cli(args, manifest=dbt_project.manifest_path, target_path=data_dir / "theirs")
    assert list(theirs.stream())
    assert [command[0] for command in dbt_commands(spawns)] == ["--version", "build"], (
        f"dagster-dbt no longer runs `dbt --version` before an invocation: {UPGRADE_HINT}"
    )
    assert theirs.adapter is not None, f"dagster-dbt no longer builds an adapter per invocation: {UPGRADE_HINT}"

    spawns.clear()
    ours = resource(WarehouseDbtResource).cli(args, manifest=dbt_project.manifest_path, target_path=data_dir / "ours")
    events = list(ours.stream())
    assert dbt_commands(spawns) == [args], f"WarehouseDbtResource ran more than dbt {args}: {UPGRADE_HINT}"
    assert ours.adapter is None, f"WarehouseDbtResource built a dbt adapter in process: {UPGRADE_HINT}"
    assert ours.is_successful()
    assert [event.asset_key for event in events if isinstance(event, dg.AssetMaterialization)] == [
        dg.AssetKey(["seeds", "channel_mapping"])
    ]


def test_no_asset_asks_for_what_only_the_adapter_serves():
    sources = [path for path in Path("orchestration").rglob("*.py") if path.name != "workarounds.py"]
    assert sources
    for path in sources:
        text = path.read_text()
        assert "fetch_row_counts" not in text and "fetch_column_metadata" not in text, (
            f"{path} needs dagster-dbt's adapter, which WarehouseDbtResource does not build"
        )


def test_dagster_dbt_seeds_invocations_from_the_folder_keep_parse_state_writes():
    seeded_from = _get_dbt_target_path()
    if not seeded_from.is_absolute():
        seeded_from = PROJECT_DIR / seeded_from
    assert seeded_from.resolve() == (PROJECT_DIR / dbt_project.target_path).resolve(), (
        f"dagster-dbt now seeds the parse state from {seeded_from}: {UPGRADE_HINT}"
    )
    run = inspect.getsource(DbtCliInvocation.run)
    assert "_get_dbt_target_path()" in run and "PARTIAL_PARSE_FILE_NAME" in run and "shutil.copy(" in run, (
        f"DbtCliInvocation.run seeds the parse state differently: {UPGRADE_HINT}"
    )


def parse_events(invocation) -> set[str]:
    """The names of dbt's structured log events of an invocation."""
    return {event.raw_event["info"]["name"] for event in invocation.stream_raw_events()}


@pytest.mark.slow
def test_dagster_dbt_seeds_the_parse_state_but_never_hands_it_back(data_dir, spawns):
    """keep_parse_state is what carries the parse state from one invocation to the next: dagster-dbt copies the
    project's state into each invocation's folder before dbt starts and never back, and with the state copied back
    the next invocation parses partially."""
    project_state = PROJECT_DIR / dbt_project.target_path / PARSE_STATE
    if not project_state.exists():
        pytest.skip("no target/partial_parse.msgpack: run `make manifest`")
    original = project_state.read_bytes()
    dbt = resource(WarehouseDbtResource)
    try:
        first = dbt.cli(["parse"], target_path=data_dir / "first")
        first_events = parse_events(first)
        assert [spawn.seeded for spawn in spawns] == [True], (
            f"dagster-dbt no longer seeds the parse state: {UPGRADE_HINT}"
        )
        # make's state is for make's DATA_DIR, not this test's: dbt parses the whole project again
        assert "UnableToPartialParse" in first_events, sorted(first_events)
        assert project_state.read_bytes() == original, (
            f"dagster-dbt now hands the parse state back itself: drop keep_parse_state ({UPGRADE_HINT})"
        )

        keep_parse_state(first.target_path)
        assert project_state.read_bytes() == (first.target_path / PARSE_STATE).read_bytes()
        second_events = parse_events(dbt.cli(["parse"], target_path=data_dir / "second"))
        assert "UnableToPartialParse" not in second_events, sorted(second_events)
    finally:
        staged = project_state.with_name(".partial_parse.test.tmp")
        staged.write_bytes(original)
        staged.replace(project_state)
