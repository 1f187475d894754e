"""intermediate.int_experiment_user_metrics and int_experiment_metric_moments (seed experiment_metrics) on a
hand-written event log: each user's metric, pre-period value and denominator computed by hand, the percentile cap,
and the moments read back through ml/experiment_stats.py equal to the same statistics from the users' values; then
marts.experiment_metric_results and experiment_decisions over them."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from ingestion import IngestSettings, ingest_landing
from ml.experiment_stats import Moments, compare
from tests.activation_log import Log
from tests.conftest import query, run_dbt, write_lines

pytestmark = pytest.mark.slow

T0 = datetime(2026, 1, 5, 10, 0)
DAY = timedelta(days=1)
EXPERIMENT = "checkout_redesign"


def build_log() -> list[dict]:
    log = Log()

    def view(user: str, variant: str) -> None:
        log.add(user, "Experiment Viewed", T0, experiment_id=EXPERIMENT, variant=variant)

    def order(user: str, moment: datetime, revenue: float) -> None:
        log.add(user, "Order Completed", moment, revenue=revenue)

    view("c0", "control")
    order("c0", T0 - 10 * DAY, 10)  # in the 28-day pre-period
    order("c0", T0 - 40 * DAY, 30)  # before it
    order("c0", T0 + 1 * DAY, 20)
    order("c0", T0 + 2 * DAY, 40)
    log.add("c0", "Product Viewed", T0 + 3 * DAY)
    log.add("c0", "Feature Used", T0 + 8 * DAY)  # active in week 2 (days 7-14 after the exposure)
    view("c1", "control")  # nothing else
    view("c2", "control")
    log.add("c2", "Order Refunded", T0 + 1 * DAY)
    order("c2", T0 + 8 * DAY, 25)  # after the 7-day window: no conversion, but active in week 2
    view("c3", "control")
    for day in (1, 2, 3):
        log.add("c3", "Product Viewed", T0 + day * DAY)
    for day in (5, 6):
        log.add("c3", "Product Viewed", T0 - day * DAY)
    view("t0", "treatment")
    order("t0", T0 + 6 * DAY + timedelta(hours=23), 50)
    view("t1", "treatment")
    order("t1", T0 + 1 * DAY, 100)
    order("t1", T0 + 1 * DAY + timedelta(hours=1), 1000)  # the outlier the 99th percentile caps
    log.add("t1", "Product Viewed", T0 - 1 * DAY)
    view("t2", "treatment")
    view("t3", "treatment")
    order("t3", T0 + 7 * DAY, 30)  # exactly at the window's end: counts
    # as_of a month later, so that every window is complete
    log.add("late", "Page Viewed", T0 + 30 * DAY)
    return log.rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("metrics") / "data"
    write_lines(data_dir / "landing" / "metrics.jsonl", build_log())
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "build", "--select", "+experiment_decisions")
    return data_dir


def _user_values(warehouse, metric: str) -> dict[str, tuple[float, float, float]]:
    rows = query(
        warehouse,
        "select user_id, metric_value, pre_period_value, denominator_value "
        "from intermediate.int_experiment_user_metrics where experiment_id = ? and metric = ? order by user_id",
        [EXPERIMENT, metric],
    )
    return {user: (y, x, d) for user, y, x, d in rows}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # (y, x, d) per user: the window is (T0, T0 + 7 days], the pre-period (T0 - 28 days, T0)
        ("conversion", {"c0": (1, 1, 0), "c1": (0, 0, 0), "c2": (0, 0, 0), "c3": (0, 0, 0),
                        "t0": (1, 0, 0), "t1": (1, 0, 0), "t2": (0, 0, 0), "t3": (1, 0, 0)}),
        ("orders", {"c0": (2, 1, 0), "c1": (0, 0, 0), "c2": (0, 0, 0), "c3": (0, 0, 0),
                    "t0": (1, 0, 0), "t1": (2, 0, 0), "t2": (0, 0, 0), "t3": (1, 0, 0)}),
        ("revenue", {"c0": (60, 10, 0), "c1": (0, 0, 0), "c2": (0, 0, 0), "c3": (0, 0, 0),
                     "t0": (50, 0, 0), "t1": (1100, 0, 0), "t2": (0, 0, 0), "t3": (30, 0, 0)}),
        ("revenue_per_order", {"c0": (60, 0, 2), "c1": (0, 0, 0), "c2": (0, 0, 0), "c3": (0, 0, 0),
                               "t0": (50, 0, 1), "t1": (1100, 0, 2), "t2": (0, 0, 0), "t3": (30, 0, 1)}),
        ("product_views", {"c0": (1, 0, 0), "c1": (0, 0, 0), "c2": (0, 0, 0), "c3": (3, 2, 0),
                           "t0": (0, 0, 0), "t1": (0, 1, 0), "t2": (0, 0, 0), "t3": (0, 0, 0)}),
        # active in (T0 + 7 days, T0 + 14 days]; before the exposure, any activity (c0's orders, c3's and t1's views)
        ("active_week_2", {"c0": (1, 1, 0), "c1": (0, 0, 0), "c2": (1, 0, 0), "c3": (0, 1, 0),
                           "t0": (0, 0, 0), "t1": (0, 1, 0), "t2": (0, 0, 0), "t3": (0, 0, 0)}),
        ("refunds", {"c0": (0, 0, 0), "c1": (0, 0, 0), "c2": (1, 0, 0), "c3": (0, 0, 0),
                     "t0": (0, 0, 0), "t1": (0, 0, 0), "t2": (0, 0, 0), "t3": (0, 0, 0)}),
    ],
)  # fmt: skip
def test_each_users_metric_by_hand(warehouse, metric: str, expected: dict) -> None:
    assert _user_values(warehouse, metric) == expected  # whole numbers: exact


def _moments(warehouse, metric: str) -> dict[str, tuple]:
    rows = query(
        warehouse,
        "select variant, cap_value, users, sum_y, sum_y2, sum_x, sum_x2, sum_xy, sum_d, sum_d2, sum_yd "
        "from intermediate.int_experiment_metric_moments where experiment_id = ? and metric = ?",
        [EXPERIMENT, metric],
    )
    return {variant: values for variant, *values in rows}


def test_the_cap_by_hand(warehouse) -> None:
    """Revenue over the 8 users, sorted: 0, 0, 0, 0, 30, 50, 60, 1100; the 0.99 quantile lies at position
    7 * 0.99 = 6.93: 60 + 0.93 * (1100 - 60) = 1027.2, so t1's 1100 counts as 1027.2 (and the moments' sums
    with it: treatment 50 + 1027.2 + 30)."""
    moments = _moments(warehouse, "revenue")
    assert moments["treatment"][0] == pytest.approx(1027.2)
    assert moments["treatment"][2] == pytest.approx(1107.2)
    assert moments["treatment"][3] == pytest.approx(50**2 + 1027.2**2 + 30**2)
    assert moments["control"][2:6] == pytest.approx([60, 3600, 10, 100])
    assert moments["control"][1] == 4
    # no cap on conversion (cap_percentile empty)
    assert _moments(warehouse, "conversion")["control"][0] is None


@pytest.mark.parametrize("metric", ["conversion", "active_week_2", "revenue_per_order"])  # the uncapped ones
def test_statistics_from_the_moments_equal_those_from_the_users(warehouse, metric: str) -> None:
    values = _user_values(warehouse, metric)
    moments = _moments(warehouse, metric)
    ratio = metric == "revenue_per_order"
    arms = {}
    for variant, prefix in (("control", "c"), ("treatment", "t")):
        y, x, d = (np.array([values[u][i] for u in sorted(values) if u.startswith(prefix)]) for i in range(3))
        arms[variant] = Moments.of(y, x, d)
        assert moments[variant][1:] == pytest.approx(
            [arms[variant].n, arms[variant].sum_y, arms[variant].sum_y2, arms[variant].sum_x, arms[variant].sum_x2,
             arms[variant].sum_xy, arms[variant].sum_d, arms[variant].sum_d2, arms[variant].sum_yd]
        )  # fmt: skip
    from_users = compare(arms["control"], arms["treatment"], ratio=ratio, cuped=not ratio)
    from_sql = compare(
        *(Moments(*moments[variant][1:]) for variant in ("control", "treatment")), ratio=ratio, cuped=not ratio
    )
    assert from_sql.difference == pytest.approx(from_users.difference, nan_ok=True)
    assert from_sql.difference_se == pytest.approx(from_users.difference_se, nan_ok=True)


def test_the_metric_results_mart_by_hand(warehouse) -> None:
    """Conversion: control 1 of 4 (0.25), treatment 3 of 4 (0.75): lift 0.75 / 0.25 - 1 = 2. Revenue per order:
    treatment 1,180 over 4 orders = 295, control 60 over 2 = 30: lift 295 / 30 - 1 = 8.8333. Conversion has a
    28-day pre-period (c0's order 10 days before), so its estimate is CUPED's; revenue per order is a ratio: raw."""
    rows = query(
        warehouse,
        "select metric, variant, users, value, control_value, lift, estimate, estimate_lift, cuped_lift, "
        "adjusted_p_value, correction, decision from marts.experiment_metric_results where experiment_id = ?",
        [EXPERIMENT],
    )
    by_key = {(metric, variant): rest for metric, variant, *rest in rows}
    assert len(rows) == 7 * 2
    users, value, control_value, lift, estimate, estimate_lift, cuped_lift, adjusted, correction, decision = by_key[
        ("conversion", "treatment")
    ]
    assert (users, value, control_value, lift, estimate) == (4, 0.75, 0.25, pytest.approx(2.0), "cuped")
    values = _user_values(warehouse, "conversion")
    arms = [Moments.of(*(np.array([values[u][i] for u in sorted(values) if u[0] == side]) for i in range(3)))
            for side in "ct"]  # fmt: skip
    assert estimate_lift == cuped_lift == pytest.approx(compare(*arms, cuped=True).lift)
    assert correction == "holm" and decision == "keep running"
    ratio = by_key[("revenue_per_order", "treatment")]
    assert tuple(ratio[1:5]) == (295.0, 30.0, pytest.approx(295 / 30 - 1), "raw") and ratio[6] is None
    # guardrails are not corrected
    assert by_key[("refunds", "treatment")][7] is None and adjusted is not None
    decisions = query(warehouse, "select experiment_id, decision, users, exposure_days, primary_metrics, "
                      "guardrail_metrics from marts.experiment_decisions")  # fmt: skip
    assert decisions == [(EXPERIMENT, "keep running", 8, 1, 1, 2)]
