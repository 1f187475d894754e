"""Every place this code location relies on dagster-dbt internals, in one module.

Written for dagster 1.13.27, dagster-dbt 0.29.27 and dbt-core 1.11.16. tests/test_dbt_workarounds.py pins each
workaround to the behaviour it works around and fails when an upgrade changes it; when it does, re-read the
dagster-dbt code named in the failing workaround's docstring before changing the pinned versions there.
"""

import os
import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.defs.dbt.project import dbt_project

# the versions these workarounds were written against (tests/test_dbt_workarounds.py compares the installed ones)
PINNED_VERSIONS = {"dagster": "1.13.27", "dagster-dbt": "0.29.27", "dbt-core": "1.11.16"}


class WarehouseDbtResource(DbtCliResource):
    """dbt's CLI as dagster-dbt runs it, without two start-up costs we have no use for.

    Works around `DbtCliResource.cli` (dagster-dbt 0.29.27), which before each invocation reads the private
    cached property `_cli_version` (running `dbt --version` in a subprocess) and, for dbt Core, calls the private
    `_initialize_dbt_core_adapter(args)` (loading the project, the profile and dbt's macros in the Dagster
    process): about 5 s together on this machine. The adapter only serves `fetch_row_counts` and
    `fetch_column_metadata` (and, for DuckDB, makes `DbtEventIterator._attach_metadata` wait for dbt to exit),
    none of which these assets call; and the dbt run is `dbt_executable()`, the dbt-core this process imports.

    On upgrade, check in `dagster_dbt/core/resource.py` that `cli` still gets the version from `_cli_version`
    (a `version.Version`, `major < 2` meaning dbt Core) and the adapter from `_initialize_dbt_core_adapter(args)`
    tolerating None, and that nothing else now runs `dbt --version` or needs the adapter.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_executable() -> str:
    """The dbt installed beside this Python (the dbt-core it imports, venv activated or not), else dbt from PATH.

    `WarehouseDbtResource._cli_version` reports the imported dbt-core's version instead of asking the executable,
    which holds only for this executable (dagster-dbt 0.29.27 defaults to `dbtf` or `dbt` from PATH).
    """
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else shutil.which("dbt") or "dbt"


def keep_parse_state(invocation_target: Path) -> None:
    """Make this invocation's parse state the one the next invocation starts from.

    Works around `DbtCliInvocation.run` (dagster-dbt 0.29.27), which gives every invocation its own target folder
    and seeds it with `partial_parse.msgpack` from the project's target folder (`DBT_TARGET_PATH`, else `target`,
    under the project), but never copies it back. That file is written by `make manifest`, for the DATA_DIR of
    that moment; dbt reparses the whole project (about 10 s here) whenever the profile it renders differs, e.g.
    under another DATA_DIR. Copying the latest state back keeps partial parsing on from one run to the next.

    On upgrade, check in `dagster_dbt/core/dbt_cli_invocation.py` that `run` still seeds the invocation's target
    folder from `<project>/<_get_dbt_target_path()>/partial_parse.msgpack` and that `DbtCliInvocation.target_path`
    is still that invocation's folder; if dagster-dbt now copies the state back itself, drop this.
    """
    state = invocation_target / "partial_parse.msgpack"
    if not state.exists():
        return
    project_target = Path(dbt_project.project_dir) / dbt_project.target_path
    staged = project_target / f".partial_parse.{os.getpid()}.tmp"
    shutil.copyfile(state, staged)
    os.replace(staged, project_target / "partial_parse.msgpack")
