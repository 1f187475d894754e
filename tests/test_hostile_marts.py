"""The real dbt project on an event log with poisoned client values planted: the run succeeds, the planned numbers
are the hand-computed ones (unchanged by the poison), every poisoned row is flagged and marts.data_health_flags
counts each kind exactly; the factorial asset succeeds and records the cells it left out.

Project rule: a value a client controls (an event, a property, a variant name, a trait) can make a row rejected or
flagged, never a model, a check or a run fail.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pytest
from scipy import stats

from ingestion import IngestSettings, ingest_landing
from ml import experiment_results
from ml.experiments import fit_factorial
from ml.settings import tracking_uri
from orchestration.defs.experiments.assets import experiment_factorial_effects
from orchestration.defs.ml.resources import MLflowResource
from orchestration.defs.resources import WarehouseResource
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow

T0 = datetime(2026, 1, 5, 10, 0)
LONG = "x" * 300  # longer than var experiment_max_name_length (200) and label_max_length (100)
GARBAGE = [f"g{i:03d}" for i in range(500)]  # 500 distinct garbage variant names of checkout_redesign
FACTORIAL = {  # onboarding_2x2 (seed: factors tour;badge, control tour_off+badge_off, goal plan_upgraded)
    "tour_off+badge_off": (30, 6),
    "tour_on+badge_off": (30, 10),
    "tour_off+badge_on": (30, 9),
    "tour_on+badge_on": (30, 15),
}
DBT_VARS = {"experiment_min_users": 5, "experiment_max_unplanned_experiments": 2, "experiment_max_user_revenue": 500}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Log:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, user: str, name: str, moment: datetime, properties: dict | None = None, **fields: object) -> None:
        self.rows.append(
            event(f"h{len(self.rows):05d}", user, event=name, timestamp=iso(moment), received_at=iso(moment),
                  properties=properties, **fields)
        )  # fmt: skip

    def view(self, user: str, experiment: object, variant: object, moment: datetime) -> None:
        properties = {}
        if experiment is not None:
            properties["experiment_id"] = experiment
        if variant is not None:
            properties["variant"] = variant
        self.add(user, "Experiment Viewed", moment, properties)

    def order(self, user: str, moment: datetime, revenue: object) -> None:
        self.add(user, "Order Completed", moment, {"revenue": revenue})


def build_log() -> list[dict]:  # noqa: C901 - older than the complexity rule; split when next changed
    log = Log()
    # checkout_redesign, planned: control 12 users (3 convert: 30, 50, 10), treatment 8 users (4 convert: 40, 20,
    # 70, 25)
    for i, revenue in enumerate([30.0, 50.0, 10.0] + [None] * 9):
        log.view(f"c{i:02d}", "checkout_redesign", "control", T0 + timedelta(minutes=i))
        if revenue:
            log.order(f"c{i:02d}", T0 + timedelta(days=1, minutes=i), revenue)
    for i, revenue in enumerate([40.0, 20.0, 70.0, 25.0] + [None] * 4):
        log.view(f"t{i:02d}", "checkout_redesign", "treatment", T0 + timedelta(hours=1, minutes=i))
        if revenue:
            log.order(f"t{i:02d}", T0 + timedelta(days=2, minutes=i), revenue)
    # poison in checkout_redesign: the unplanned variant `evil` (2 users, one orders 1000, capped at 500 by the
    # test's var), variant names that are an object and 300 characters ('(invalid)'), 500 garbage names
    log.view("e0", "checkout_redesign", "evil", T0 + timedelta(hours=2))
    log.order("e0", T0 + timedelta(hours=3), 1000.0)
    log.view("e1", "checkout_redesign", "evil", T0 + timedelta(hours=2, minutes=1))
    log.view("i0", "checkout_redesign", {"nested": "object"}, T0 + timedelta(hours=2, minutes=2))
    log.view("i1", "checkout_redesign", LONG, T0 + timedelta(hours=2, minutes=3))
    for i, name in enumerate(GARBAGE):
        log.view(f"g{i:03d}", "checkout_redesign", name, T0 + timedelta(hours=4, seconds=i))

    # onboarding_2x2: four planned cells of 30 users, and two variants that do not fit the design
    for cell, (users, conversions) in FACTORIAL.items():
        for i in range(users):
            uid = f"f{cell}{i}"
            log.view(uid, "onboarding_2x2", cell, T0 + timedelta(days=1, minutes=i))
            if i < conversions:
                log.add(uid, "Plan Upgraded", T0 + timedelta(days=1, hours=5, minutes=i))
    log.view("fbad1", "onboarding_2x2", "tour_on", T0 + timedelta(days=1, hours=1))
    log.view("fbad2", "onboarding_2x2", "tour_on+badge_off+extra", T0 + timedelta(days=1, hours=1))

    # unplanned experiments: rogue_a (3 users), rogue_b (2), rogue_c (1), an id of 300 characters ('(invalid)', 1);
    # var experiment_max_unplanned_experiments = 2 keeps rogue_a and rogue_b
    for i, variant in enumerate(["control", "control", "x"]):
        log.view(f"ra{i}", "rogue_a", variant, T0 + timedelta(days=2, minutes=i))
    for i in range(2):
        log.view(f"rb{i}", "rogue_b", "v1", T0 + timedelta(days=2, hours=1, minutes=i))
    log.view("rc0", "rogue_c", "v1", T0 + timedelta(days=2, hours=2))
    log.view("ri0", LONG, "control", T0 + timedelta(days=2, hours=3))
    # exposures without an experiment id or a variant: not exposures, flagged
    log.view("nv0", "checkout_redesign", None, T0 + timedelta(days=2, hours=4))
    log.view("nv1", None, "control", T0 + timedelta(days=2, hours=4))

    # features, traits and campaigns as objects or 100 KB strings
    log.add("fe0", "Feature Used", T0 + timedelta(days=3), {"feature": LONG})
    log.add("fe1", "Feature Used", T0 + timedelta(days=3), {"feature": {"name": "nested"}})
    log.add("fe2", "Feature Used", T0 + timedelta(days=3), {"feature": "search"})
    for user, traits in [
        ("tr0", {"plan": "p" * 100_000}),
        ("tr1", {"country": {"iso": "DE"}}),
        ("tr2", {"plan": "pro"}),
    ]:
        log.add(user, "Product Viewed", T0 + timedelta(days=3, hours=1))
        log.rows.append(event(f"h{len(log.rows):05d}", user, type="identify", event=None, traits=traits,
                              timestamp=iso(T0 + timedelta(days=3, hours=2)),
                              received_at=iso(T0 + timedelta(days=3, hours=2))))  # fmt: skip
    log.add("cp0", "Product Viewed", T0 - timedelta(days=1), context={"campaign": {"source": LONG, "medium": "cpc"}})
    # revenue ingestion rejects (not a number, beyond the limit): never reach raw.events
    log.order("rv0", T0 + timedelta(days=3), "1e400")
    log.order("rv1", T0 + timedelta(days=3), {"amount": 5})
    log.order("rv2", T0 + timedelta(days=3), "NaN")
    # product ids the recommendation model would learn from: an object, an array, one over label_max_length, a
    # number and a plain one (marts.ml_product_interactions keeps the last two)
    for n, product in enumerate([{"sku": 1}, [1, 2], LONG, 42, "p1"]):
        log.add(f"pi{n}", "Product Added", T0 + timedelta(days=2), {"product_id": product, "price": 5})
    log.add("late", "Product Viewed", T0 + timedelta(days=30))  # as_of: every window has ended
    return log.rows


# rows written to raw.events by another path than today's ingestion (an older loader, a backfill): what ingestion
# would reject must still not fail staging
LEGACY_ROWS = [
    ("leg-1", '{"revenue": "NaN"}', "track", "Order Completed"),
    ("leg-2", '{"revenue": "1e400"}', "track", "Order Completed"),
    ("leg-3", '{"revenue": {"amount": 5}}', "track", "Order Completed"),
    ("leg-4", '{"revenue": "0x1A"}', "track", "Order Completed"),
    ("leg-5", '{"revenue": "123456789012345678"}', "track", "Order Completed"),
    ("leg-6", None, "click", None),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    write_lines(data_dir / "landing" / "events.jsonl", build_log())
    ingest_landing(IngestSettings(data_dir=data_dir))
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        for message_id, properties, call_type, name in LEGACY_ROWS:
            con.execute(
                "insert into raw.events values (?, 'legacy', null, ?, ?, ?, ?, ?, null, null, 'legacy.jsonl', 1, ?)",
                [message_id, call_type, name, T0 + timedelta(days=4), T0 + timedelta(days=4), properties,
                 T0 + timedelta(days=4)],
            )  # fmt: skip
    run_dbt(data_dir, "build", dbt_vars=DBT_VARS)  # raises unless the whole build passed
    return data_dir


def results(data_dir: Path) -> dict[tuple[str, str], dict]:
    frame = pd.DataFrame(
        duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        .execute("select * from marts.experiment_results")
        .df()
    )
    return {(row["experiment_id"], row["variant"]): row.to_dict() for _, row in frame.iterrows()}


def test_the_build_succeeds_and_only_warns_on_the_client_call_type(warehouse):
    log = (warehouse / "dbt_logs" / "dbt.log").read_text()
    assert "accepted_values" in log
    # dbt build passed (run_dbt raises otherwise); the call type 'click' is a warning, not an error
    warned = query(warehouse, "select count(*) from staging.stg_events where event_type = 'click'")
    assert warned == [(1,)]


def test_product_ids_and_experiments_a_client_names_are_bounded(warehouse):
    rows = query(warehouse, "select user_id, product_id, events, interaction_weight from marts.ml_product_interactions "
                 "where user_id like 'pi%' order by user_id")  # fmt: skip
    assert rows == [("pi3", "42", 1, 3), ("pi4", "p1", 1, 3)]  # product_added weighs 3
    planned = {experiment for (experiment,) in query(warehouse, "select experiment_id from seeds.experiments")}
    assigned = query(warehouse, "select experiment_id, variant from marts.experiment_assignments")
    assert assigned and {experiment for experiment, _ in assigned} <= planned
    assert not [variant for _, variant in assigned if variant == "(invalid)" or len(variant) > 200]


def test_ingestion_rejects_the_revenue_it_cannot_read(warehouse):
    reasons = query(warehouse, "select reason from raw.events_rejected order by line_number")
    assert len(reasons) == 3
    assert all("revenue" in reason for (reason,) in reasons)


def test_planned_rows_keep_their_hand_computed_numbers(warehouse):
    got = results(warehouse)
    control, treatment = got["checkout_redesign", "control"], got["checkout_redesign", "treatment"]
    assert (control["users"], control["conversions"], treatment["users"], treatment["conversions"]) == (12, 3, 8, 4)
    assert control["is_planned_variant"] and treatment["is_planned_variant"] and control["is_planned_experiment"]
    assert treatment["lift_vs_control"] == pytest.approx((4 / 8) / (3 / 12) - 1)  # = 1.0
    assert treatment["p_value"] == pytest.approx(
        stats.chi2_contingency([[4, 4], [3, 9]], correction=False).pvalue, rel=1e-9
    )
    # the sample-ratio test uses the planned variants only: 12 vs 8 against 50/50, chi2 = 0.8 on 1 df
    assert control["srm_p_value"] == pytest.approx(stats.chi2.sf(0.8, 1), rel=1e-12)
    assert not control["has_sample_ratio_mismatch"] and not control["is_underpowered"]
    assert (control["planned_share"], treatment["planned_share"]) == (0.5, 0.5)
    assert control["revenue_per_user"] == pytest.approx(90 / 12)
    assert treatment["revenue_per_user"] == pytest.approx(155 / 8)
    assert treatment["revenue_diff_vs_control"] == pytest.approx(155 / 8 - 90 / 12)
    # the poison in checkout_redesign: 2 evil + 2 invalid + 500 garbage exposures, on every row
    assert {row["unplanned_users"] for key, row in got.items() if key[0] == "checkout_redesign"} == {504}
    assert all(pd.isna(row["config_error"]) for row in got.values())


def test_unplanned_variants_are_flagged_counted_and_not_compared(warehouse):
    got = results(warehouse)
    evil = got["checkout_redesign", "evil"]
    assert (evil["users"], evil["conversions"], evil["is_planned_variant"]) == (2, 1, False)
    assert evil["conversion_rate"] == 0.5
    assert evil["revenue_per_user"] == pytest.approx(500 / 2)  # 1000 capped at var experiment_max_user_revenue
    assert all(pd.isna(evil[c]) for c in ("lift_vs_control", "p_value", "revenue_p_value", "planned_share"))
    invalid = got["checkout_redesign", "(invalid)"]
    assert (invalid["users"], invalid["is_planned_variant"]) == (2, False)
    # at most var experiment_max_variants (20) rows: control, treatment, the 17 largest others (ties by name:
    # '(invalid)', evil, g000..g014) and the fold row holding the other 485 names
    rows = sorted(v for e, v in got if e == "checkout_redesign")
    assert len(rows) == 20
    assert set(rows) == {"control", "treatment", "(invalid)", "evil", "(other unplanned)", *GARBAGE[:15]}
    folded = got["checkout_redesign", "(other unplanned)"]
    assert (folded["users"], folded["variant_names"], folded["is_planned_variant"]) == (485, 485, False)
    # factorial: the cells that do not name one level per factor are unplanned; the 4 cells' split is as planned
    assert not got["onboarding_2x2", "tour_on"]["is_planned_variant"]
    assert not got["onboarding_2x2", "tour_on+badge_off+extra"]["is_planned_variant"]
    planned = [row for (e, _), row in got.items() if e == "onboarding_2x2" and row["is_planned_variant"]]
    assert len(planned) == 4 and {row["planned_share"] for row in planned} == {0.25}
    assert [row["srm_p_value"] for row in planned] == [pytest.approx(1.0)] * 4


def test_unplanned_experiments_are_flagged_and_bounded(warehouse):
    got = results(warehouse)
    experiments = {e for e, _ in got}
    assert experiments == {"checkout_redesign", "onboarding_2x2", "rogue_a", "rogue_b", "(other unplanned)"}
    assert not got["rogue_a", "control"]["is_planned_experiment"]
    assert got["rogue_a", "control"]["is_planned_variant"]  # no seed row: every observed variant is planned
    assert (got["rogue_a", "control"]["users"], got["rogue_a", "x"]["users"]) == (2, 1)
    folded = got["(other unplanned)", "(other unplanned)"]
    assert (folded["users"], folded["variant_names"], folded["is_planned_experiment"]) == (2, 2, False)


def test_data_health_flags_count_each_kind(warehouse):
    rows = query(warehouse, "select flag, flagged, users, example from marts.data_health_flags")
    flags = {flag: (flagged, users, example) for flag, flagged, users, example in rows}
    assert (
        flags
        == {
            # checkout_redesign: (invalid), evil, 15 kept garbage, 485 folded; onboarding_2x2: 2 unfit cells
            "unplanned_variant": (504, 506, "checkout_redesign: (invalid)"),
            "unplanned_experiment": (4, 7, "(invalid)"),  # rogue_a, rogue_b, rogue_c, the 300-character id
            "experiments_folded": (2, 2, "(invalid)"),  # rogue_c and the 300-character id
            "variants_folded": (485, 485, "checkout_redesign"),
            "experiment_config_error": (0, 0, None),
            "invalid_experiment_name": (3, 3, "i0"),
            "experiment_revenue_capped": (1, 1, "checkout_redesign: e0"),
            "experiment_view_incomplete": (2, 2, min(m for m in message_ids_of_incomplete_views())),
            "revenue_unreadable": (5, 1, "0x1A"),  # NaN, 1e400, an object, 0x1A, beyond decimal(18, 4)
            "unknown_event_type": (1, 1, "click"),
            "invalid_feature": (2, 2, min(message_ids_of("Feature Used")[:2])),
            "invalid_trait": (2, 2, "tr0"),
            "invalid_campaign": (1, 1, "cp0"),
            # the flags of tests/test_hostile_audit.py: nothing of the kind in this log
            "features_folded": (0, 0, None),
            "dimension_values_folded": (0, 0, None),
            "long_id": (0, 0, None),
            "unnamed_event": (0, 0, None),
            "event_without_user": (0, 0, None),
        }
    )
    plans = dict(query(warehouse, "select user_id, plan from intermediate.int_users where user_id like 'tr%'"))
    assert plans == {"tr0": "(invalid)", "tr1": "unknown", "tr2": "pro"}
    assert query(warehouse, "select country from intermediate.int_users where user_id = 'tr1'") == [("(invalid)",)]
    features = query(warehouse, "select feature, feature_users from marts.feature_adoption order by feature")
    assert features == [("(invalid)", 2), ("search", 1)]
    revenue = query(warehouse, "select count(*) from staging.stg_events where user_id = 'legacy' and revenue is null")
    assert revenue == [(6,)]


def message_ids_of(name: str) -> list[str]:
    return [row["message_id"] for row in build_log() if row.get("event") == name]


def message_ids_of_incomplete_views() -> list[str]:
    return [
        row["message_id"] for row in build_log()
        if row.get("event") == "Experiment Viewed" and len(row.get("properties") or {}) < 2
    ]  # fmt: skip


def test_factorial_asset_leaves_out_the_unfit_cells_and_fits_the_rest(warehouse, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(warehouse))
    result = dg.materialize(
        [experiment_factorial_effects],
        resources={
            "warehouse": WarehouseResource(data_dir=str(warehouse)),
            "mlflow": MLflowResource(),
        },
    )
    assert result.success
    (materialization,) = [e.materialization for e in result.get_asset_materialization_events()]
    metadata = materialization.metadata
    assert metadata["experiments_fitted"].value == 1
    assert metadata["cells_left_out"].value == 2
    reasons = metadata["cells_left_out_reasons"].value["onboarding_2x2"]
    assert set(reasons) == {"tour_on", "tour_on+badge_off+extra"}
    assert "1 part(s)" in reasons["tour_on"] and "3 part(s)" in reasons["tour_on+badge_off+extra"]

    def logit(x: int, n: int) -> float:
        return math.log(x / (n - x))

    (x00, n00), (x10, n10), (x01, n01), (x11, n11) = (FACTORIAL[c][::-1] for c in FACTORIAL)
    expected = {
        "tour=tour_on": logit(x10, n10) - logit(x00, n00),
        "badge=badge_on": logit(x01, n01) - logit(x00, n00),
        "tour=tour_on:badge=badge_on": logit(x11, n11) - logit(x10, n10) - logit(x01, n01) + logit(x00, n00),
    }
    effects = dict(query(warehouse, "select effect, log_odds from ml.experiment_factorial_effects"))
    assert effects == {name: pytest.approx(value, abs=1e-8) for name, value in expected.items()}
    users = query(warehouse, "select distinct users from ml.experiment_factorial_effects")
    assert users == [(120,)]  # the two unfit cells are not in the fit
    run_id = query(warehouse, "select distinct mlflow_run_id from ml.experiment_factorial_effects")[0][0]
    tags = mlflow.MlflowClient(tracking_uri()).get_run(run_id).data.tags
    assert tags["cells_left_out"] == "2" and "tour_on+badge_off+extra" in tags["cells_left_out_reasons"]


@pytest.mark.parametrize(
    ("variants", "factors", "left_out"),
    [
        (["a0+b0", "a1+b0", "a0+b1", "a1+b1", "a1"], "a;b", {"a1"}),
        (["a0+b0", "a1+b0", "a0+b1", "a1+b1", "a1+b:1"], "a;b", {"a1+b:1"}),  # ':' would break the effect names
        (["a0+b0", "a1+b0", "a0+b1", "a1+b1", "a9+b0", "(other unplanned)"], "a;b", {"a9+b0", "(other unplanned)"}),
    ],
)
def test_fit_factorial_never_raises_on_variant_names(variants, factors, left_out):
    users = [100] * 4 + [5] * (len(variants) - 4)
    conversions = [10, 20, 30, 40] + [1] * (len(variants) - 4)
    cells = pd.DataFrame({"variant": variants, "users": users, "conversions": conversions})
    split = "a0+b0=1;a1+b0=1;a0+b1=1;a1+b1=1" if "a9+b0" in variants else None
    result = fit_factorial("e", factors, "a0+b0", cells, min_users_per_cell=50, planned_split=split)
    assert set(result.left_out) == left_out
    assert result.skipped is None and len(result.effects) == 3
    assert set(result.effects["users"]) == {400}


@pytest.mark.parametrize(
    ("factors", "control", "reason"),
    [("a", "a0", "2+ distinct names"), ("a;b", "a0", "control variant 'a0'"), ("a;a", "a0+a0", "2+ distinct")],
)
def test_fit_factorial_skips_a_malformed_seed_row_with_the_reason(factors, control, reason):
    cells = pd.DataFrame({"variant": ["a0+b0", "a1+b0"], "users": [100, 100], "conversions": [10, 20]})
    result = fit_factorial("e", factors, control, cells)
    assert reason in result.skipped and result.effects.empty


def variants_frame(split: object, variants: dict[str, tuple[int, int]], factors: object = None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"experiment_id": "e", "variant": name, "users": n, "conversions": x, "revenue_per_user": 1.0,
             "revenue_sd": 0.5, "users_window_complete": n, "goal_event": "order_completed", "window_days": 7,
             "control_variant": "control", "planned_split": split, "factors": factors,
             "is_planned_experiment": True, "variant_names": 1}
            for name, (n, x) in variants.items()
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("split", "error"),
    [
        ("control=0.5;treatment", "planned_split must be variant=weight pairs"),
        ("control=abc;treatment=1", "planned_split must be variant=weight pairs"),
        ("control=-1;treatment=1", "planned_split must be variant=weight pairs"),
        ("control=nan;treatment=1", "planned_split must be variant=weight pairs"),
        ("treatment=1;other=1", "control_variant 'control' is not in planned_split"),
    ],
)
def test_a_malformed_planned_split_is_reported_on_its_experiment(split, error):
    rows = experiment_results.experiment_rows(
        variants_frame(split, {"control": (100, 10), "treatment": (100, 20)}), 5, 0.001
    )
    assert all(error in row["config_error"] for row in rows)
    treatment = next(row for row in rows if row["variant"] == "treatment")
    # the comparison with control still goes on; the split check does not when the split cannot be read
    assert treatment["lift_vs_control"] == pytest.approx(1.0)
    if "pairs" in error:
        assert math.isnan(treatment["srm_p_value"])


def test_the_reported_failure_unplanned_evil_variant_no_longer_raises():
    frame = variants_frame("control=0.5;treatment=0.5", {"control": (12, 3), "treatment": (8, 4), "evil": (1, 1)})
    rows = {row["variant"]: row for row in experiment_results.experiment_rows(frame, 5, 0.001)}
    assert rows["evil"]["is_planned_variant"] is False and math.isnan(rows["evil"]["lift_vs_control"])
    assert rows["control"]["srm_p_value"] == pytest.approx(stats.chisquare([12, 8], [10, 10]).pvalue)
    assert {row["unplanned_users"] for row in rows.values()} == {1}
    assert all(row["config_error"] is None for row in rows.values())


def test_metric_results_and_decisions_stay_bounded_and_never_compare_client_variants(warehouse):
    """The same hostile log through the metric marts: the 20 variant rows per metric of int_experiment_variants,
        unplanned ones never compared; e0's order of 1,000 clamped at var experiment_max_user_revenue (500) in the sums
    (a metric's value can sum any number of client orders);
        a decision for each experiment kept by name (the two rogue ones on the default conversion metric), none for
        the fold."""
    rows = query(warehouse, "select metric, variant, is_planned_variant, lift from marts.experiment_metric_results "
                 "where experiment_id = 'checkout_redesign'")  # fmt: skip
    per_metric = {metric: sum(1 for m, *_ in rows if m == metric) for metric, *_ in rows}
    assert set(per_metric.values()) == {20} and len(per_metric) == 7
    assert all(lift is None for _, variant, planned, lift in rows if not planned)
    assert {variant for _, variant, planned, _ in rows if planned} == {"control", "treatment"}
    # revenue_per_order has no percentile cap: only the clamp stands between e0's 1,000 and the sums
    clamped = query(
        warehouse,
        "select sum_y from intermediate.int_experiment_metric_moments where "
        "experiment_id = 'checkout_redesign' and variant = 'evil' and metric = 'revenue_per_order'",
    )
    assert clamped == [(500.0,)]
    decisions = dict(query(warehouse, "select experiment_id, decision from marts.experiment_decisions"))
    assert set(decisions) == {"checkout_redesign", "onboarding_2x2", "rogue_a", "rogue_b"}
    metrics = query(warehouse, "select distinct metric, role from marts.experiment_metric_results "
                    "where experiment_id = 'rogue_a'")  # fmt: skip
    assert metrics == [("conversion", "primary")]
    # CUPAC's per-user features only for those experiments: a flood of ids cannot multiply a user's history
    featured = query(warehouse, "select distinct experiment_id from intermediate.int_experiment_user_features")
    assert {experiment for (experiment,) in featured} == set(decisions)
