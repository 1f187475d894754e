"""The batch gate: decides whether the files of one ingestion run may reach the models.

Row-level problems were already sent to raw.events_rejected by ingestion; the gate looks at the batch as a
whole: files lacking a required column, files that do not reconcile, a volume far from the trailing average,
a sudden jump in the share of nulls, and the raw_events suite over the batch's rows (a second line behind the
row-level rules). A batch that fails is quarantined: its files get gate_status 'quarantined' in
raw.load_manifest and staging leaves their rows out, so marts stay exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from expectations.runner import SuiteRunner, ValidationOutcome
from expectations.suites import SUITES
from ingestion.loader import FileResult
from settings import GateSettings

NULL_SHARE_COLUMNS = ("user_id", "properties", "context")


@dataclass
class GateOutcome:
    """What the gate found for one batch."""

    batch_id: str
    files: list[FileResult] = field(default_factory=list)
    batch_problems: list[str] = field(default_factory=list)
    suite: ValidationOutcome | None = None
    # files of earlier batches still quarantined, waiting for someone to look at them and release them
    still_quarantined: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def reconciles(self) -> bool:
        return all(f.reconciles for f in self.files)

    @property
    def suite_passed(self) -> bool:
        return self.suite is None or self.suite.success

    @property
    def passed(self) -> bool:
        return not self.batch_problems and self.reconciles and self.suite_passed


def run_gate(
    con: duckdb.DuckDBPyConnection, batch_id: str, runner: SuiteRunner, settings: GateSettings | None = None
) -> GateOutcome:
    """Check one batch, record the verdict in raw.batches and raw.load_manifest, and return it.

    The batch is this run's files plus any file still 'pending' from a run that stopped before its gate.
    """
    settings = settings or GateSettings()
    manifest = con.execute(
        "select file_name, status, rows_in, rows_loaded, rows_duplicate, rows_rejected, detail, "
        "coalesce(rows_erased, 0) from raw.load_manifest where batch_id = ? or gate_status = 'pending' "
        "order by file_name",
        [batch_id],
    ).fetchall()
    outcome = GateOutcome(batch_id, [FileResult(*row[:7], rows_erased=row[7]) for row in manifest])
    outcome.batch_problems += [f"{f.file_name}: {f.detail}" for f in outcome.files if f.status == "missing_columns"]
    loaded_files = [f.file_name for f in outcome.files if f.rows_loaded > 0]
    if loaded_files:
        outcome.batch_problems += _volume_problems(con, outcome.files, settings)
        outcome.batch_problems += _null_share_problems(con, loaded_files, settings)
        outcome.suite = runner.validate(
            con, SUITES["raw_events"], where="source_file in (select unnest($files))", params={"files": loaded_files}
        )
    if manifest:
        _record(con, outcome, len(manifest))
    outcome.still_quarantined = [
        row[0]
        for row in con.execute(
            "select file_name from raw.load_manifest where gate_status = 'quarantined' and batch_id <> ? "
            "order by file_name",
            [batch_id],
        ).fetchall()
    ]
    return outcome


def producer_of(file_name: str) -> str:
    """The landing subfolder a file came from ('' for the top level): one producer, one volume history."""
    return file_name.split("/", 1)[0] if "/" in file_name else ""


# rows each passed batch loaded from one producer, newest first (the producer expression mirrors producer_of)
_PRODUCER_HISTORY = """
    select sum(m.rows_loaded) as rows_loaded
    from raw.load_manifest as m join raw.batches as b on b.batch_id = m.batch_id
    where b.gate_status = 'passed'
      and (case when contains(m.file_name, '/') then split_part(m.file_name, '/', 1) else '' end) = $producer
    group by m.batch_id, b.started_at
    having sum(m.rows_loaded) >= $min_rows
    order by b.started_at desc
    limit $history
"""


def _volume_problems(con: duckdb.DuckDBPyConnection, files: list[FileResult], settings: GateSettings) -> list[str]:
    """Each producer's rows in this batch against its own trailing average.

    A collector streaming a few hundred rows a batch after a backfill of 50,000-row files is not a volume drop:
    judged against one average of all batches, every stream batch was quarantined, and as quarantined batches
    never enter the average, that went on for ever.
    """
    loaded: dict[str, int] = {}
    for f in files:
        producer = producer_of(f.file_name)
        loaded[producer] = loaded.get(producer, 0) + f.rows_loaded
    problems = []
    for producer, rows_loaded in sorted(loaded.items()):
        if rows_loaded < settings.volume_min_rows:
            continue
        params = {"producer": producer, "min_rows": settings.volume_min_rows, "history": settings.volume_history}
        history = [row[0] for row in con.execute(_PRODUCER_HISTORY, params).fetchall()]
        if len(history) < settings.volume_min_history:
            continue
        average = sum(history) / len(history)
        ratio = rows_loaded / average
        if ratio < settings.volume_min_ratio or ratio > settings.volume_max_ratio:
            source = f" from {producer}/" if producer else ""
            problems.append(
                f"volume: {rows_loaded} rows loaded{source} is {ratio:.2f}x the trailing average of {average:.0f} "
                f"over the last {len(history)} passed batches{source} "
                f"(allowed {settings.volume_min_ratio}x to {settings.volume_max_ratio}x)"
            )
    return problems


def _null_shares(con: duckdb.DuckDBPyConnection, files_sql: str, params: dict) -> tuple[int, dict[str, float]]:
    columns = ", ".join(f"avg(case when {c} is null then 1.0 else 0.0 end)" for c in NULL_SHARE_COLUMNS)
    row = con.execute(
        f"select count(*), {columns} from raw.events where source_file in ({files_sql})", params
    ).fetchone()
    return row[0], dict(zip(NULL_SHARE_COLUMNS, row[1:], strict=True))


def _null_share_problems(con: duckdb.DuckDBPyConnection, files: list[str], settings: GateSettings) -> list[str]:
    rows, shares = _null_shares(con, "select unnest($files)", {"files": files})
    trailing_rows, trailing = _null_shares(
        con,
        "select file_name from raw.load_manifest where batch_id in ("
        "  select batch_id from raw.batches where gate_status = 'passed' and rows_loaded > 0"
        "  order by started_at desc limit $history)",
        {"history": settings.volume_history},
    )
    if rows < settings.min_rows_for_shares or trailing_rows < settings.min_rows_for_shares:
        return []
    return [
        f"null share of {column}: {shares[column]:.1%} in this batch against {trailing[column]:.1%} before "
        f"(a jump of more than {settings.null_share_jump:.0%})"
        for column in NULL_SHARE_COLUMNS
        if shares[column] - trailing[column] > settings.null_share_jump
    ]


def _record(con: duckdb.DuckDBPyConnection, outcome: GateOutcome, files: int) -> None:
    verdict = "passed" if outcome.passed else "quarantined"
    problems = list(outcome.batch_problems)
    if not outcome.reconciles:
        problems.append("some files do not reconcile (rows in != loaded + duplicate + rejected)")
    if not outcome.suite_passed:
        problems += [f"raw_events suite: {failure.expectation} failed on {failure.unexpected_count} rows"
                     for failure in outcome.suite.failures]  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "update raw.load_manifest set gate_status = ?, batch_id = ? where file_name in (select unnest(?)) "
        "and gate_status = 'pending'",
        [verdict, outcome.batch_id, [f.file_name for f in outcome.files]],
    )
    con.execute(
        "insert or replace into raw.batches values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            outcome.batch_id, now, files, sum(f.rows_in for f in outcome.files), outcome.rows_loaded, verdict,
            "; ".join(problems) or None, now,
        ],
    )  # fmt: skip
