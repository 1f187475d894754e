"""int_funnel_journeys and marts.funnel_conversion against an independent pandas implementation
(tests/funnel_reference.py), row for row, on generated events (dirty rows, duplicates and late arrivals included)
with funnels that use every option: the orderings, both entries, exclusions, every filter operator, and the
breakdown attributions."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from demo_events import GeneratorConfig, generate
from ingestion import IngestSettings, ingest_landing
from tests import funnel_reference
from tests.conftest import run_dbt

pytestmark = pytest.mark.slow

FUNNELS = [
    # funnel_id, window, unit, ordering, entry, breakdown, attribution, attribution_step
    ("seq4", "7", "day", "sequential", "first", "context:device.type", "first_touch", None),
    ("strict_recurring", "1", "hour", "strict", "recurring", None, None, None),
    ("any3", "3", "day", "any", "recurring", None, None, None),
    ("excluded", "2", "day", "sequential", "first", "property:product_id", "last_touch", None),
    ("step_attributed", "14", "day", "sequential", "recurring", "property:product_id", "step", "2"),
    ("operators", "30", "day", "sequential", "first", None, None, None),
]
STEPS = [
    ("seq4", "step", "1", "page_viewed", None, None, None),
    ("seq4", "step", "2", "product_viewed", None, None, None),
    ("seq4", "step", "3", "product_added", None, None, None),
    ("seq4", "step", "4", "order_completed", None, None, None),
    ("strict_recurring", "step", "1", "product_viewed", None, None, None),
    ("strict_recurring", "step", "2", "product_added", None, None, None),
    ("any3", "step", "1", "feature_used", None, None, None),
    ("any3", "step", "2", "search_performed", None, None, None),
    ("any3", "step", "3", "order_completed", None, None, None),
    ("excluded", "step", "1", "product_viewed", None, None, None),
    ("excluded", "step", "2", "order_completed", "revenue", "gte", "30"),
    ("excluded", "exclusion", "1", "search_performed", None, None, None),
    ("step_attributed", "step", "1", "page_viewed", "name", "eq", "Pricing"),
    ("step_attributed", "step", "2", "product_viewed", None, None, None),
    ("step_attributed", "step", "3", "order_completed", None, None, None),
    ("operators", "step", "1", "page_viewed", "name", "contains", "o"),
    ("operators", "step", "1", "page_viewed", "name", "neq", "Home"),
    ("operators", "step", "2", "order_completed", "coupon", "is_not_set", None),
    ("operators", "step", "2", "order_completed", "revenue", "lt", "80"),
    ("operators", "step", "3", "order_completed", "coupon", "is_set", None),
    ("operators", "step", "3", "order_completed", "revenue", "gt", "5"),
    ("operators", "step", "4", "order_completed", "revenue", "lte", "1000"),
]
COMPARED = [
    "funnel_id", "user_id", "entered_at", "is_first_entry", "is_day_entry", "is_week_entry", "is_month_entry",
    "step_number", "reached_at", "seconds_from_previous", "last_step_number", "is_excluded", "breakdown_value",
]  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("reference")
    generate(replace(GeneratorConfig(users=1, seed=23), users=300, months=3, file_rows=5000), root)
    data_dir = root / "data"
    (data_dir / "landing").mkdir(parents=True)
    for path in (root / "landing").iterdir():
        path.rename(data_dir / "landing" / path.name)
    ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    run_dbt(data_dir, "seed")
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("delete from seeds.funnels")
        con.executemany(
            "insert into seeds.funnels (funnel_id, conversion_window, window_unit, ordering, entry, breakdown, "
            "attribution, attribution_step) values (?, ?, ?, ?, ?, ?, ?, ?)",
            FUNNELS,
        )
        con.execute("delete from seeds.funnel_steps")
        con.executemany("insert into seeds.funnel_steps values (?, ?, ?, ?, ?, ?, ?)", STEPS)
    run_dbt(
        data_dir, "build", "--select", "+funnel_conversion", "--exclude", "resource_type:seed",
        "--indirect-selection", "cautious",
    )  # fmt: skip
    return data_dir


def _read(data_dir, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).df()


def test_journeys_equal_the_pandas_implementation(warehouse):
    definitions = _read(warehouse, "select * from intermediate.int_funnel_definitions")
    assert definitions["config_error"].isna().all(), definitions["config_error"].dropna().tolist()
    funnels = funnel_reference.load_funnels(
        definitions, _read(warehouse, "select * from intermediate.int_funnel_step_definitions")
    )
    events = _read(
        warehouse, "select user_id, message_id, event_name, event_at, properties, context from "
        "intermediate.int_activity_events",
    )  # fmt: skip
    expected = funnel_reference.journeys(funnels, events)[COMPARED]
    actual = _read(warehouse, f"select {', '.join(COMPARED)} from intermediate.int_funnel_journeys")
    order = ["funnel_id", "user_id", "entered_at", "step_number"]
    expected = expected.sort_values(order).reset_index(drop=True)
    actual = actual.sort_values(order).reset_index(drop=True)
    actual["seconds_from_previous"] = actual["seconds_from_previous"].astype(float)
    expected["seconds_from_previous"] = expected["seconds_from_previous"].astype(float)
    for column in ("step_number", "last_step_number"):
        actual[column] = actual[column].astype("int64")
        expected[column] = expected[column].astype("int64")
    # every funnel has journeys, and every option shows up in the data
    assert set(expected["funnel_id"]) == {row[0] for row in FUNNELS}
    assert expected["is_excluded"].any() and (expected["step_number"] == 4).any()
    assert (~expected["is_first_entry"] & expected["is_day_entry"]).any()  # recurring entries
    assert "(not reached)" in set(expected["breakdown_value"].dropna())
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def test_conversion_counts_equal_the_pandas_implementation(warehouse):
    journeys = _read(warehouse, "select * from intermediate.int_funnel_journeys")
    kept = journeys[journeys["is_first_entry"] & ~journeys["is_excluded"]]
    expected = kept.groupby(["funnel_id", "step_number"]).size().to_dict()
    actual = _read(
        warehouse,
        "select funnel_id, step_number, users from marts.funnel_conversion where grain = 'all' "
        "and breakdown_value = '(all)' and users > 0",
    )
    assert {(r.funnel_id, r.step_number): r.users for r in actual.itertuples()} == expected
