"""Great Expectations' Data Docs site as an asset: every check links its own validation's page at once, and the
index of all kept validations is rebuilt here, off the path of the landing refresh (GX reads every stored result
to rebuild it: 0.9 s of each 1.5 s validation when every validation rebuilt it)."""

from typing import TYPE_CHECKING

import dagster as dg

from ingestion.markup import Markdown, md_escape, md_table
from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.tiers import FOLLOW_UP, tier

if TYPE_CHECKING:
    from expectations.runner import ValidationOutcome

DATA_DOCS = dg.AssetKey(["quality", "data_docs"])
# the assets whose Great Expectations suites write results into the site
VALIDATED = [
    dg.AssetKey(["raw", "events"]),
    dg.AssetKey(["staging", "stg_events"]),
    dg.AssetKey(["marts", "cohort_retention"]),
    dg.AssetKey(["marts", "daily_kpis"]),
]


def expectations_markdown(outcome: "ValidationOutcome", examples: int = 5) -> str:
    """Which expectations failed, on how many rows, with examples: a table whose cells are escaped (the examples are
    values from the data, sent by clients)."""
    rows = [
        [
            o.expectation,
            Markdown("yes" if o.success else "**no**"),
            o.unexpected_count,
            ", ".join(repr(e) for e in o.examples[:examples]),
        ]
        for o in sorted(outcome.outcomes, key=lambda o: o.success)
    ]
    return md_table(["expectation", "passed", "unexpected rows", "examples"], rows, align="llrl")


def failed_expectations(outcome: "ValidationOutcome") -> str | None:
    """A check's description: the failed expectations, escaped (None when all passed)."""
    failures = outcome.failures
    return "; ".join(md_escape(f.expectation) for f in failures) if failures else None


def docs_links(outcome: "ValidationOutcome") -> dict[str, dg.MetadataValue]:
    """Check metadata linking a validation's own Data Docs page and the site's index (if it keeps Data Docs)."""
    links: dict[str, dg.MetadataValue] = {}
    if outcome.docs_pages:
        links["data_docs"] = dg.MetadataValue.path(str(outcome.docs_pages[0]))
    if outcome.docs_index is not None:
        links["data_docs_index"] = dg.MetadataValue.path(str(outcome.docs_index))
    return links


@dg.asset(
    key=DATA_DOCS,
    deps=VALIDATED,
    group_name="quality",
    tags=tier(FOLLOW_UP),
    kinds={"python"},
    # it opens no DuckDB file, but every step that writes (and prunes) the GX store holds this pool: reading the
    # store while a validation writes it could meet half-written or just-removed results
    pool=DUCKDB_WRITER_POOL,
    description="Great Expectations Data Docs under $DATA_DIR/gx: the index of the kept validation results "
    "(GX_KEEP_RESULTS a suite) and the suites' pages. Each check's own page is written when it runs; the index is "
    "rebuilt by the follow-up and the daily runs.",
)
def data_docs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    runner = warehouse.suite_runner()
    index = runner.build_docs_index()
    pages = sorted((index.parent / "validations").rglob("*.html"))
    context.log.info(f"Data Docs index rebuilt with {len(pages)} validation pages: {index}")
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index)), "validation_pages": len(pages)})
