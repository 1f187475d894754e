"""Run a suite over a DuckDB table in chunks with GX Core, and keep Data Docs under $DATA_DIR/gx.

GX's SQL datasource fails on DuckDB, so rows are read by DuckDB and validated as pandas frames one chunk at a
time; a large table never has to fit in memory (the selection is computed once into a DuckDB temporary table, which
spills to disk). Chunks split rows by the hash of the suite's key, so a uniqueness expectation holds for the table
exactly when it holds in each chunk. Row-level work that pandas would do one Python call per row (parsing JSON,
say) belongs in the suite's relation as a derived column, checked by a plain expectation.
"""

from __future__ import annotations

import logging
import math
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import great_expectations as gx
import pandas as pd
import pyarrow as pa
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
from great_expectations.execution_engine import pandas_execution_engine

from expectations.suites import SuiteSpec
from settings import QualitySettings

log = logging.getLogger(__name__)
EXAMPLES = 5

# GX fingerprints every frame under this many bytes by hashing each of its cells (7.6 s of a 35 s validation of
# 10M staged events). A chunk is a temporary frame that nothing looks up by fingerprint: no frame is hashed.
pandas_execution_engine.HASH_THRESHOLD = 0


@dataclass
class ExpectationOutcome:
    """One expectation's result over every chunk."""

    expectation: str
    success: bool
    unexpected_count: int = 0
    element_count: int = 0
    examples: list = field(default_factory=list)


@dataclass
class ValidationOutcome:
    """A suite's result over a table (or a batch of it)."""

    suite: str
    rows: int
    chunks: int
    outcomes: list[ExpectationOutcome]
    docs_index: Path | None = None
    # this validation's own Data Docs pages, one per chunk (the index is rebuilt by build_docs_index)
    docs_pages: list[Path] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(outcome.success for outcome in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]


class SuiteRunner:
    """Validates suites against a DuckDB connection.

    With `project_root` (DATA_DIR) it keeps a GX file project in `project_root/gx`, stores each result there with
    its Data Docs page, and keeps the latest `keep_results` of each suite (setting GX_KEEP_RESULTS, default 50).
    The index page (`gx/uncommitted/data_docs/local_site/index.html`) is rebuilt by `build_docs_index` only: GX
    reads every stored result to rebuild it, which took 0.9 s of each 1.5 s validation here.
    """

    def __init__(
        self,
        project_root: Path | None = None,
        chunk_rows: int = 500_000,
        keep_results: int = QualitySettings.gx_keep_results,
    ) -> None:
        self.chunk_rows = chunk_rows
        self.keep_results = max(1, keep_results)
        if project_root is None:
            self.context = gx.get_context(mode="ephemeral")
        else:
            project_root.mkdir(parents=True, exist_ok=True)
            self.context = gx.get_context(mode="file", project_root_dir=str(project_root))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_or_update_pandas("warehouse_frames")
        self.asset = (
            source.get_asset("chunk") if "chunk" in source.get_asset_names() else source.add_dataframe_asset("chunk")
        )
        self.batch_definition = (
            self.asset.get_batch_definition("whole")
            if "whole" in [b.name for b in self.asset.batch_definitions]
            else self.asset.add_batch_definition_whole_dataframe("whole")
        )
        self.project_root = project_root

    def validate(
        self, con: duckdb.DuckDBPyConnection, spec: SuiteSpec, where: str = "true", params: dict | None = None
    ) -> ValidationOutcome:
        """Validate the rows of `spec.relation` that satisfy `where` (fixed SQL, values only as `params`)."""
        suite = self.context.suites.add_or_update(spec.build())
        checkpoint = self._checkpoint(spec, suite)
        selection = f"select * from {spec.relation} as validated where {where}"
        rows = con.execute(f"select count(*) from ({selection})", params or {}).fetchone()[0]
        chunks = max(1, math.ceil(rows / self.chunk_rows))
        merged: dict[str, ExpectationOutcome] = {}
        stored: list[object] = []
        if self.project_root is not None:
            # this validation stores one result per chunk: make room for them
            prune_results(self.project_root / "gx" / "uncommitted", spec.name, max(0, self.keep_results - chunks))
        for frame in _chunk_frames(con, selection, params or {}, spec.partition_key, chunks):
            if checkpoint is not None:
                run_results = checkpoint.run(batch_parameters={"dataframe": frame}).run_results
                stored.extend(run_results)
                results = next(iter(run_results.values())).results
            else:
                batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
                results = batch.validate(suite, result_format=_RESULT_FORMAT).results
            for result in results:
                _merge(merged, result)
        outcome = ValidationOutcome(spec.name, rows, chunks, list(merged.values()))
        if self.project_root is not None:
            outcome.docs_index = self.docs_site / "index.html"
            outcome.docs_pages = self._build_pages(stored)
        log.info("suite %s: %s on %d rows in %d chunk(s)", spec.name, outcome.success, rows, chunks)
        return outcome

    @property
    def docs_site(self) -> Path:
        """The folder of the Data Docs site (only with a project root)."""
        if self.project_root is None:
            raise ValueError("an ephemeral runner keeps no Data Docs")
        return self.project_root / "gx" / "uncommitted" / "data_docs" / "local_site"

    def build_docs_index(self) -> Path:
        """Rebuild the Data Docs index (every stored result of every suite) and the suites' pages; returns the
        index page."""
        suites = [ExpectationSuiteIdentifier(name=suite.name) for suite in self.context.suites.all()]
        self.context.build_data_docs(resource_identifiers=suites, build_index=True)
        return self.docs_site / "index.html"

    def _build_pages(self, stored: list[object]) -> list[Path]:
        """Render the pages of these validation results alone, not the index."""
        if not stored:
            return []
        self.context.build_data_docs(resource_identifiers=stored, build_index=False)
        return [
            self.docs_site / "validations" / Path(*identifier.to_tuple()).with_suffix(".html") for identifier in stored
        ]

    def _checkpoint(self, spec: SuiteSpec, suite: gx.ExpectationSuite) -> gx.Checkpoint | None:
        if self.project_root is None:
            return None
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=spec.name, data=self.batch_definition, suite=suite)
        )
        return self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=spec.name,
                validation_definitions=[definition],
                actions=[],  # pages are rendered per validation, the index by build_docs_index
                result_format=_RESULT_FORMAT,
            )
        )


def _chunk_frames(
    con: duckdb.DuckDBPyConnection, selection: str, params: dict, partition_key: str, chunks: int
) -> Iterator[pd.DataFrame]:
    """The selected rows as `chunks` pandas frames split by the hash of `partition_key`.

    More than one chunk: the selection is computed once into a temporary table with each row's chunk, which is
    then read a chunk at a time (selecting once per chunk computed the relation `chunks` times: 21 passes over
    10M events, 65 of the gate's 185 s).
    """
    if chunks == 1:
        yield _frame(con, f"select {_frame_columns(con, selection, params)} from ({selection}) as selected", params)
        return
    table = f"gx_chunks_{uuid.uuid4().hex}"
    # stored in chunk order, so that reading one chunk skips the row groups of the others (min/max per group)
    con.execute(
        f"create temp table {table} as select *, hash({partition_key}) % {chunks} as gx_chunk "
        f"from ({selection}) as selected order by gx_chunk",
        params,
    )
    try:
        columns = _frame_columns(con, f"select * exclude (gx_chunk) from temp.{table}", {})
        for chunk in range(chunks):
            yield _frame(con, f"select {columns} from temp.{table} where gx_chunk = {chunk}", {})
    finally:
        con.execute(f"drop table if exists temp.{table}")


def _frame_columns(con: duckdb.DuckDBPyConnection, selection: str, params: dict) -> str:
    """The select list that reads `selection` the way DuckDB's own `.df()` types it: decimals as doubles, dates
    as timestamps (Arrow would give Decimal and date objects, one Python object a cell)."""
    schema = con.execute(f"select * from ({selection}) as selected limit 0", params).to_arrow_table().schema
    columns = []
    for column in schema:
        name = '"' + column.name.replace('"', '""') + '"'
        if pa.types.is_decimal(column.type):
            columns.append(f"cast({name} as double) as {name}")
        elif pa.types.is_date(column.type):
            columns.append(f"cast({name} as timestamp) as {name}")
        else:
            columns.append(name)
    return ", ".join(columns)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pd.DataFrame:
    """A query's rows as a pandas frame through Arrow: strings stay Arrow-backed (`.df()` builds a Python object
    a string and converts them back, 8.4 of 12.9 s reading 10M staged events)."""
    return con.execute(sql, params).to_arrow_table().to_pandas()


_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}


def prune_results(uncommitted: Path, suite: str, keep: int) -> int:
    """Remove all but the latest `keep` stored results of `suite` and their Data Docs pages; returns how many
    results went. Both live in folders named by the run's UTC time (`<suite>/<run name>/<YYYYmmddTHHMMSS.fZ>/`),
    so names sort by age."""
    stale = _oldest_runs(uncommitted / "validations", suite, keep)
    for folder in stale + _oldest_runs(uncommitted / "data_docs" / "local_site" / "validations", suite, keep):
        shutil.rmtree(folder, ignore_errors=True)
    return len(stale)


def _oldest_runs(base: Path, suite: str, keep: int) -> list[Path]:
    runs = sorted((p for p in base.glob(f"{suite}/*/*") if p.is_dir()), key=lambda p: p.name)
    return runs[: max(0, len(runs) - keep)]


def _describe(config: object) -> str:
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    target = kwargs.pop("column", None) or kwargs.pop("column_list", None)
    pair = (kwargs.pop("column_A", None), kwargs.pop("column_B", None))
    if pair[0]:
        target = f"{pair[0]} vs {pair[1]}"
    details = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("value_set",))
    return f"{config.type}({target}{', ' + details if details else ''})"


def _merge(merged: dict[str, ExpectationOutcome], result: object) -> None:
    name = _describe(result.expectation_config)
    outcome = merged.setdefault(name, ExpectationOutcome(name, True))
    details = result.result or {}
    outcome.success = outcome.success and bool(result.success)
    outcome.unexpected_count += int(details.get("unexpected_count") or 0)
    outcome.element_count += int(details.get("element_count") or 0)
    room = EXAMPLES - len(outcome.examples)
    if room > 0:
        outcome.examples.extend(_plain(v) for v in (details.get("partial_unexpected_list") or [])[:room])


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value
