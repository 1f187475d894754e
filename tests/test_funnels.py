"""Funnels (seeds funnels and funnel_steps, int_funnel_journeys, marts.funnel_conversion, audience_funnel_dropoffs)
and paths (seed paths, int_path_steps, marts.path_steps, path_transitions, path_top_sequences) on a hand-written
event log: every option against steps counted by hand. The seed tables are replaced by this
test's definitions after `dbt seed`, then the models are built by the real dbt, in America/New_York (UTC-5 until
2026-03-08 02:00 local, UTC-4 after) so that cohort days are local days and a DST change falls inside a funnel."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from ingestion import IngestSettings, ingest_landing
from tests.conftest import event, query, run_dbt, write_lines

pytestmark = pytest.mark.slow

T0 = datetime(2026, 1, 5, 15, 0)  # Monday 10:00 in New York
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
PAGE, PRODUCT, ORDER, SEARCH = "Page Viewed", "Product Viewed", "Order Completed", "Search Performed"
NEW_YORK = {"reporting_timezone": "America/New_York"}

FUNNEL_COLUMNS = (
    "funnel_id,description,conversion_window,window_unit,ordering,entry,breakdown,attribution,attribution_step"
)
FUNNELS = [
    # funnel_id, window, unit, ordering, entry, breakdown, attribution, attribution_step
    ("seq", "1", "day", "sequential", "", "", "", ""),
    ("strict", "1", "day", "strict", "", "", "", ""),
    ("anyorder", "1", "day", "any", "", "", "", ""),
    ("excl", "1", "day", "", "", "", "", ""),
    ("recur", "1", "hour", "sequential", "recurring", "", "", ""),
    ("repeat", "1", "day", "", "", "", "", ""),
    ("first_touch", "1", "day", "", "", "property:color", "first_touch", ""),
    ("last_touch", "1", "day", "", "", "property:color", "last_touch", ""),
    ("step_touch", "1", "day", "", "", "property:color", "step", "2"),
    ("device", "1", "day", "", "", "context:device.type", "", ""),
    ("filtered", "1", "day", "", "", "", "", ""),
    ("by_variant", "1", "day", "", "", "variant:exp1", "", ""),
    ("by_plan", "1", "day", "", "", "user:plan", "", ""),
    ("by_segment", "1", "day", "", "", "rfm_segment", "", ""),
    ("by_cluster", "1", "day", "", "", "cluster", "", ""),
    # broken definitions: each is reported, none stops the others
    ("bad_ordering", "1", "day", "strictly", "", "", "", ""),
    ("bad_window", "abc", "fortnight", "", "", "", "", ""),
    ("bad_steps", "", "", "", "", "user:password", "", ""),
    ("Bad-Id", "", "", "", "", "", "", ""),
]
ABC = [("page_viewed", "", "", ""), ("product_viewed", "", "", ""), ("order_completed", "", "", "")]
STEPS: dict[str, list[tuple[str, str, str, str]]] = {
    name: ABC
    for name in (
        "seq",
        "strict",
        "anyorder",
        "excl",
        "first_touch",
        "last_touch",
        "step_touch",
        "device",
        "by_variant",
        "by_plan",
        "by_segment",
        "by_cluster",
    )
}
STEPS["recur"] = [("Page Viewed", "", "", ""), ("Order Completed", "", "", "")]  # names as sent: normalised
STEPS["repeat"] = [("page_viewed", "", "", ""), ("page_viewed", "", "", ""), ("order_completed", "", "", "")]
STEPS["bad_ordering"] = ABC
STEPS["bad_window"] = ABC
STEPS["Bad-Id"] = ABC
STEP_COLUMNS = "funnel_id,step_kind,step_number,event_name,property,operator,value"
PATH_COLUMNS = "path_id,description,anchor_event,direction,depth,top_events,session_bounded,collapse_repeats"
PATHS = [
    ("nxt", "App Opened", "next", "3", "2", "", ""),
    ("nxt_every", "app_opened", "", "3", "2", "false", "false"),
    ("prv", "purchase_made", "previous", "2", "5", "true", "true"),
    ("bad_path", "app_opened", "sideways", "99", "", "maybe", ""),
]


def _step_rows() -> list[tuple]:
    rows = [
        (funnel, "step", str(number), name, prop, op, value)
        for funnel, steps in STEPS.items()
        for number, (name, prop, op, value) in enumerate(steps, start=1)
    ]
    rows.append(("excl", "exclusion", "1", "search_performed", "", "", ""))
    # step 2 of `filtered`: a product view with price >= 10 AND colour red (two rows, AND-ed)
    rows += [
        ("filtered", "step", "1", "page_viewed", "", "", ""),
        ("filtered", "step", "2", "product_viewed", "price", "gte", "10"),
        ("filtered", "step", "2", "product_viewed", "color", "eq", "red"),
        ("filtered", "step", "3", "order_completed", "", "", ""),
    ]
    rows += [  # bad_steps: a gap in the numbers, an unknown operator, a field that is not a path
        ("bad_steps", "step", "1", "page_viewed", "a b", "", ""),
        ("bad_steps", "step", "3", "order_completed", "revenue", "between", "1"),
        ("orphan", "step", "1", "page_viewed", "", "", ""),
    ]
    return rows


class Log:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, user: str, name: str, moment: datetime, context: dict | None = None, **properties: object):
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.rows.append(
            event(f"m{len(self.rows):05d}", user, event=name, timestamp=stamp, received_at=stamp,
                  properties=properties or None, context=context)
        )  # fmt: skip


def build_log() -> list[dict]:
    log = Log()
    # u1: A, B, C an hour apart: every ordering reaches 3
    for k, name in enumerate((PAGE, PRODUCT, ORDER)):
        log.add("u1", name, T0 + k * HOUR)
    # u2: A, a search, B, then C 25 h after A (past the 1-day window): sequential 2, strict 1 (the search follows
    # A), excluded from `excl` (search between steps 1 and 2)
    log.add("u2", PAGE, T0)
    log.add("u2", SEARCH, T0 + 10 * timedelta(minutes=1))
    log.add("u2", PRODUCT, T0 + HOUR)
    log.add("u2", ORDER, T0 + 25 * HOUR)
    # u3: C exactly at the window's end: counts
    log.add("u3", PAGE, T0)
    log.add("u3", PRODUCT, T0 + HOUR)
    log.add("u3", ORDER, T0 + DAY)
    # u4: B before A: sequential 1 (B must follow A); any order 3 (entry at B)
    log.add("u4", PRODUCT, T0)
    log.add("u4", PAGE, T0 + HOUR)
    log.add("u4", ORDER, T0 + 2 * HOUR)
    # u5 enters twice: A on Monday (nothing after), A, C on Wednesday: first entry counts (1 step); `recur` counts
    # a day cohort each day (Monday 1 step, Wednesday 2) and one week cohort (Monday's entry)
    log.add("u5", PAGE, T0)
    log.add("u5", PAGE, T0 + 2 * DAY)
    log.add("u5", ORDER, T0 + 2 * DAY + 30 * timedelta(minutes=1))
    # u6: A and B at the same second, A sent first: B counts; u7: B sent first: it does not
    log.add("u6", PAGE, T0)
    log.add("u6", PRODUCT, T0)
    log.add("u7", PRODUCT, T0)
    log.add("u7", PAGE, T0)
    # u8: one page view cannot be both steps of `repeat`; u9 has two
    log.add("u8", PAGE, T0)
    log.add("u8", ORDER, T0 + HOUR)
    log.add("u9", PAGE, T0)
    log.add("u9", PAGE, T0 + HOUR)
    log.add("u9", ORDER, T0 + 2 * HOUR)
    # attribution: u10 red -> blue -> green; u11 red, nothing more
    log.add("u10", PAGE, T0, color="red", context={"device": {"type": "mobile"}})
    log.add("u10", PRODUCT, T0 + HOUR, color="blue", price=12)
    log.add("u10", ORDER, T0 + 2 * HOUR, color="green")
    log.add("u11", PAGE, T0, color="red", context={"device": {"type": "desktop"}})
    # filters: u12's product view is red but costs 5 (fails price >= 10); u10's passes neither (blue)
    log.add("u12", PAGE, T0)
    log.add("u12", PRODUCT, T0 + HOUR, color="red", price=5)
    log.add("u12", PRODUCT, T0 + 2 * HOUR, color="red", price="10")
    log.add("u12", ORDER, T0 + 3 * HOUR)
    # variants: u1 in control, u3 in treatment
    log.add("u1", "Experiment Viewed", T0 - HOUR, experiment_id="exp1", variant="control")
    log.add("u3", "Experiment Viewed", T0 - HOUR, experiment_id="exp1", variant="treatment")
    # traits: u1 on the pro plan, u3 on free (identify is not an activity: no funnel step)
    log.rows.append(event("t1", "u1", type="identify", event=None, timestamp="2026-01-05T14:00:00Z",
                          received_at="2026-01-05T14:00:00Z", traits={"plan": "pro"}))  # fmt: skip
    log.rows.append(event("t3", "u3", type="identify", event=None, timestamp="2026-01-05T14:00:00Z",
                          received_at="2026-01-05T14:00:00Z", traits={"plan": "free"}))  # fmt: skip
    # DST: d1 enters 2026-03-08 01:00 EST (06:00Z); B 07:00Z = 03:00 EDT, C 08:00Z: one real hour each
    dst = datetime(2026, 3, 8, 6, 0)
    for k, name in enumerate((PAGE, PRODUCT, ORDER)):
        log.add("d1", name, dst + k * HOUR)
    # d2 enters 2026-03-08 04:30Z = 2026-03-07 23:30 in New York: the Saturday cohort (and the March 2 week)
    log.add("d2", PAGE, datetime(2026, 3, 8, 4, 30))
    # paths (events no funnel names): q1..q4 open the app; q5..q7 buy
    q = T0 + 10 * DAY
    minute = timedelta(minutes=1)
    for k, name in enumerate(("App Opened", "Tab A", "Tab A", "Tab B", "Tab C")):
        log.add("q1", name, q + k * minute)
    log.add("q2", "App Opened", q)
    log.add("q2", "Tab B", q + minute)
    log.add("q3", "App Opened", q)
    log.add("q3", "Tab A", q + minute)
    log.add("q3", "Tab C", q + 2 * HOUR)  # another session: still on a path that is not session-bounded
    for k, name in enumerate(("App Opened", "App Opened", "Tab C")):
        log.add("q4", name, q + k * minute)
    log.add("q5", "Tab A", q)
    for k, name in enumerate(("Tab B", "Tab C", "Purchase Made")):
        log.add("q5", name, q + 2 * HOUR + k * minute)
    log.add("q6", "Tab A", q)
    log.add("q6", "Purchase Made", q + 2 * HOUR)  # alone in its session
    for k, name in enumerate(("Tab C", "Tab C", "Purchase Made", "Purchase Made")):
        log.add("q7", name, q + k * minute)
    # late: enters 2 hours before as_of (its window is open), as_of = its last event
    log.add("late", PAGE, datetime(2026, 3, 20, 10, 0))
    log.add("late", PRODUCT, datetime(2026, 3, 20, 12, 0))
    return log.rows


CLUSTERS = [("u1", 0, "power users"), ("u10", 1, "casual"), ("u11", 1, "casual")]


def _replace_seeds(data_dir) -> None:
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        # what the clustering asset would have written (`dbt seed` made the empty contract table)
        con.executemany("insert into ml.user_clusters values (?, ?, ?, 0.9, 10, false, '1')", CLUSTERS)
        con.execute("delete from seeds.funnels")
        con.executemany(
            f"insert into seeds.funnels ({FUNNEL_COLUMNS}) values (?, '', ?, ?, ?, ?, ?, ?, ?)",
            [[None if v == "" else v for v in row] for row in FUNNELS],
        )
        con.execute("delete from seeds.funnel_steps")
        con.executemany(
            f"insert into seeds.funnel_steps ({STEP_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?)",
            [[None if v == "" else v for v in row] for row in _step_rows()],
        )
        con.execute("delete from seeds.paths")
        con.executemany(
            f"insert into seeds.paths ({PATH_COLUMNS}) values (?, '', ?, ?, ?, ?, ?, ?)",
            [[None if v == "" else v for v in row] for row in PATHS],
        )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("funnels") / "data"
    write_lines(data_dir / "landing" / "funnels.jsonl", build_log())
    ingest_landing(IngestSettings(data_dir=data_dir))
    run_dbt(data_dir, "seed")
    _replace_seeds(data_dir)
    run_dbt(
        data_dir, "build", "--select", "+funnel_conversion", "+audience_funnel_dropoffs", "+path_steps",
        "+path_transitions", "+path_top_sequences", "--exclude",
        "resource_type:seed", "--indirect-selection", "cautious", dbt_vars=NEW_YORK,
    )  # fmt: skip
    return data_dir


def reached(warehouse, funnel: str) -> dict[str, int]:
    """Each user's furthest step at its first entry."""
    rows = query(
        warehouse,
        "select user_id, max(step_number) from intermediate.int_funnel_journeys "
        "where funnel_id = ? and is_first_entry and not is_excluded group by user_id",
        [funnel],
    )
    return dict(rows)


def cells(warehouse, funnel: str, grain: str = "all", breakdown_value: str = "(all)") -> list[tuple]:
    return query(
        warehouse,
        "select cohort_start, step_number, users, conversion_from_previous, conversion_from_first "
        "from marts.funnel_conversion where funnel_id = ? and grain = ? and breakdown_value = ? "
        "order by cohort_start, step_number",
        [funnel, grain, breakdown_value],
    )


ABC_USERS = {"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12", "d1", "d2", "late"}


def test_sequential_steps_follow_each_other_within_the_window(warehouse):
    steps = reached(warehouse, "seq")
    assert set(steps) == ABC_USERS
    # u2: C 25 h after A is past the 1-day window; u3: C exactly at its end counts; u4: B came before A;
    # u5: the first entry (Monday) counts, not Wednesday's complete one; u6/u7: same second, order of sending;
    # u9: page views but no product view; u12: two product views, the first one is step 2
    expected = {"u1": 3, "u2": 2, "u3": 3, "u4": 1, "u5": 1, "u6": 2, "u7": 1, "u8": 1, "u9": 1, "u10": 3,
                "u11": 1, "u12": 3, "d1": 3, "d2": 1, "late": 2}  # fmt: skip
    assert steps == expected


def test_strict_needs_the_very_next_event(warehouse):
    steps = reached(warehouse, "strict")
    # u2: a search follows A; u9: a second page view follows A; u12: a second product view follows B (fine: B
    # then C must be next, and the next event after the first product view is another product view)
    assert steps["u1"] == 3 and steps["u2"] == 1 and steps["u9"] == 1 and steps["u12"] == 2
    assert steps["u3"] == 3 and steps["u6"] == 2 and steps["u7"] == 1


def test_any_order_counts_steps_done_from_the_first_match(warehouse):
    steps = reached(warehouse, "anyorder")
    # u4 did B, A, C: 3 in any order (1 in sequence); u7 B then A at the same second: 2; u8 A and C: 2 of 3
    assert steps["u4"] == 3 and steps["u7"] == 2 and steps["u8"] == 2 and steps["u2"] == 2
    rows = query(
        warehouse,
        "select step_name from marts.funnel_conversion where funnel_id = 'anyorder' and grain = 'all' "
        "and breakdown_value = '(all)' order by step_number",
    )
    assert [r[0] for r in rows] == ["1 of 3 steps", "2 of 3 steps", "3 of 3 steps"]


def test_exclusion_disqualifies_the_entry(warehouse):
    steps = reached(warehouse, "excl")
    assert "u2" not in steps and steps["u1"] == 3
    (excluded,) = query(
        warehouse,
        "select excluded_users from marts.funnel_conversion where funnel_id = 'excl' and grain = 'all' "
        "and breakdown_value = '(all)' and step_number = 1",
    )[0]
    assert excluded == 1


def test_one_event_is_at_most_one_step(warehouse):
    steps = reached(warehouse, "repeat")
    assert steps["u8"] == 1 and steps["u9"] == 3


def test_mart_counts_and_conversion_over_all_history(warehouse):
    # seq: 15 users enter; step 2: u1 u2 u3 u6 u10 u12 d1 late = 8; step 3: u1 u3 u10 u12 d1 = 5
    rows = cells(warehouse, "seq")
    assert [(step, users) for _, step, users, _, _ in rows] == [(1, 15), (2, 8), (3, 5)]
    assert rows[1][3] == pytest.approx(8 / 15) and rows[2][3] == pytest.approx(5 / 8)
    assert rows[2][4] == pytest.approx(5 / 15)
    assert rows[0][0].isoformat() == "2026-01-05"  # 'all' is labelled by the first entry's local day


def test_time_to_convert(warehouse):
    # seq, step 2 from step 1, seconds: u1 3600, u2 3600, u3 3600, u6 0, u10 3600, u12 3600, d1 3600 (across
    # the DST change: one real hour), late 7200 -> sorted 0, 3600 x 6, 7200: median 3600, p25 3600, p90 at
    # position 0.9 * 7 = 6.3: 3600 + 0.3 * 3600 = 4680
    # step 3 from step 2: u1 3600, u3 82800, u10 3600, u12 7200, d1 3600 -> median 3600
    rows = query(
        warehouse,
        "select step_number, median_seconds_from_previous, p90_seconds_from_previous, p25_seconds_from_previous, "
        "median_seconds_from_entry from marts.funnel_conversion "
        "where funnel_id = 'seq' and grain = 'all' and breakdown_value = '(all)' order by step_number",
    )
    assert rows[0][1] is None
    assert rows[1][1] == 3600 and rows[1][2] == pytest.approx(4680) and rows[1][3] == 3600
    assert rows[2][1] == 3600
    # from entry to step 3: u1 7200, u3 86400, u10 7200, u12 10800, d1 7200 -> median 7200
    assert rows[2][4] == 7200


def test_recurring_entries_per_period(warehouse):
    # recur (A -> C within 1 hour): u5 enters on Monday (no C) and on Wednesday (C after 30 minutes)
    day_rows = query(
        warehouse,
        "select cohort_start, step_number, users from marts.funnel_conversion where funnel_id = 'recur' "
        "and grain = 'day' and breakdown_value = '(all)' and cohort_start in ('2026-01-05', '2026-01-07') "
        "order by 1, 2",
    )
    monday = {step: users for start, step, users in day_rows if start.isoformat() == "2026-01-05"}
    wednesday = {step: users for start, step, users in day_rows if start.isoformat() == "2026-01-07"}
    assert wednesday == {1: 1, 2: 1}  # only u5's second entry
    # Monday entries: u1..u12 = 12 (u4's A at T0+1h; u9's first A); C at most an hour after the entry: u4 and u8
    # (exactly 1 h) -> 2; u9's C is 2 h after its first page view (its second is not an entry)
    assert monday == {1: 12, 2: 2}
    week = query(
        warehouse,
        "select step_number, users from marts.funnel_conversion where funnel_id = 'recur' and grain = 'week' "
        "and breakdown_value = '(all)' and cohort_start = '2026-01-05' order by 1",
    )
    assert week == [(1, 12), (2, 2)]  # u5 once, at Monday's entry


def test_breakdown_attribution(warehouse):
    def values(funnel: str) -> dict[str, list[int]]:
        rows = query(
            warehouse,
            "select breakdown_value, step_number, users from marts.funnel_conversion where funnel_id = ? "
            "and grain = 'all' and breakdown_value in ('red', 'blue', 'green', '(not reached)') order by 1, 2",
            [funnel],
        )
        out: dict[str, list[int]] = {}
        for value, _, users in rows:
            out.setdefault(value, []).append(users)
        return out

    # u10: red -> blue -> green (3 steps); u11: red (1 step)
    assert values("first_touch") == {"red": [2, 1, 1]}
    assert values("last_touch") == {"green": [1, 1, 1], "red": [1, 0, 0]}
    # step 2's own value: u10 blue, u12 red (its first product view); u4 u5 u7 u8 u9 u11 d2 never reached step 2
    assert values("step_touch") == {"blue": [1, 1, 1], "red": [1, 1, 1], "(not reached)": [7, 0, 0]}


def test_context_breakdown_and_variant(warehouse):
    rows = dict(
        query(
            warehouse,
            "select breakdown_value, users from marts.funnel_conversion where funnel_id = 'device' "
            "and grain = 'all' and step_number = 1",
        )
    )
    assert rows["mobile"] == 1 and rows["desktop"] == 1 and rows["(none)"] == 13 and rows["(all)"] == 15
    variants = dict(
        query(
            warehouse,
            "select breakdown_value, users from marts.funnel_conversion where funnel_id = 'by_variant' "
            "and grain = 'all' and step_number = 3",
        )
    )
    assert variants["control"] == 1 and variants["treatment"] == 1  # u1 and u3 both convert


def test_property_filters_are_anded(warehouse):
    steps = reached(warehouse, "filtered")
    # u12: the first red product view costs 5, the second ("10", a number as text) passes; u10's is blue
    assert steps["u12"] == 3 and steps["u10"] == 1 and steps["u1"] == 1


def test_cohorts_in_local_days_across_dst(warehouse):
    rows = query(
        warehouse,
        "select cohort_start, users from marts.funnel_conversion where funnel_id = 'seq' and grain = 'day' "
        "and breakdown_value = '(all)' and step_number = 1 and cohort_start >= '2026-03-01' order by 1",
    )
    # d2 entered 2026-03-08 04:30Z, Saturday 23:30 in New York; d1 Sunday 01:00 EST; late on 2026-03-20
    assert [(start.isoformat(), users) for start, users in rows] == [
        ("2026-03-07", 1), ("2026-03-08", 1), ("2026-03-20", 1)
    ]  # fmt: skip


def test_open_windows_are_flagged(warehouse):
    rows = query(
        warehouse,
        "select cohort_start, users_window_open, is_complete from marts.funnel_conversion where funnel_id = 'seq' "
        "and grain = 'day' and breakdown_value = '(all)' and step_number = 1 order by 1",
    )
    flags = {start.isoformat(): (open_, complete) for start, open_, complete in rows}
    assert flags["2026-03-20"] == (1, False)
    assert all(complete for start, (_, complete) in flags.items() if start != "2026-03-20")


def test_dropoff_audience(warehouse):
    rows = query(
        warehouse,
        "select user_id, dropped_after_step, entered_at from marts.audience_funnel_dropoffs "
        "where funnel_id = 'seq' order by user_id",
    )
    dropped = {user: step for user, step, _ in rows}
    # reached 1 or 2 of 3 with the window ended: all but the converters and `late` (window open)
    assert dropped == {"u2": 2, "u4": 1, "u5": 1, "u6": 2, "u7": 1, "u8": 1, "u9": 1, "u11": 1, "d2": 1}
    entered = {user: at for user, _, at in rows}
    assert entered["u2"] == T0 + DAY  # when its window ended
    (audience,) = query(
        warehouse,
        "select distinct audience from marts.audience_funnel_dropoffs where user_id = 'u2' and funnel_id = 'seq'",
    )[0]
    assert audience == "funnel_seq_dropped_after_step_2"


def test_bad_definitions_are_reported_and_the_rest_builds(warehouse):
    errors = dict(query(warehouse, "select funnel_id, config_error from intermediate.int_funnel_definitions"))
    assert errors["seq"] is None
    assert "ordering 'strictly' is not one of strict, sequential, any" in errors["bad_ordering"]
    assert errors["bad_ordering"].startswith("funnel 'bad_ordering': ")
    assert "conversion_window 'abc' is not a whole number" in errors["bad_window"]
    assert "window_unit 'fortnight' is not one of minute, hour, day, week" in errors["bad_window"]
    bad_steps = errors["bad_steps"]
    assert "breakdown 'user:password' is not a column funnels can split by" in bad_steps
    assert "step numbers must be 1, 2, 3 ... without gaps" in bad_steps
    assert "operator 'between' is not one of" in bad_steps or "property 'a b' is not a field name" in bad_steps
    assert "funnel_id must be 1-50 lower-case letters" in errors["Bad-Id"]
    assert "the seed has no row for this funnel" in errors["orphan"]
    built = {row[0] for row in query(warehouse, "select distinct funnel_id from marts.funnel_conversion")}
    assert built.isdisjoint({"bad_ordering", "bad_window", "bad_steps", "Bad-Id", "orphan"})
    assert "seq" in built and "filtered" in built


def step_matrix(warehouse, path: str) -> dict[int, dict[str, int]]:
    matrix: dict[int, dict[str, int]] = {}
    for step, node, users in query(
        warehouse, "select step_number, node, users from marts.path_steps where path_id = ?", [path]
    ):
        matrix.setdefault(step, {})[node] = users
    return matrix


def test_path_step_matrix_collapsed(warehouse):
    # q1 app, tab_a (twice: one step), tab_b, tab_c; q2 app, tab_b; q3 app, tab_a, tab_c (2 h later: the path is
    # not session-bounded); q4 app (twice), tab_c. Top 2 events per step (ties by name): step 1 keeps tab_a (2)
    # and tab_b (1, before tab_c by name), so q4's tab_c is '(other)'
    assert step_matrix(warehouse, "nxt") == {
        0: {"app_opened": 4},
        1: {"tab_a": 2, "tab_b": 1, "(other)": 1},
        2: {"tab_b": 1, "tab_c": 1, "(end)": 2},
        3: {"tab_c": 1, "(end)": 3},
    }
    (share,) = query(warehouse, "select share_of_users from marts.path_steps where path_id = 'nxt' and node = 'tab_a'")[
        0
    ]
    assert share == pytest.approx(0.5)


def test_path_step_matrix_every_event(warehouse):
    # without collapsing: q1 app, tab_a, tab_a, tab_b; q4 app, app, tab_c
    assert step_matrix(warehouse, "nxt_every") == {
        0: {"app_opened": 4},
        1: {"tab_a": 2, "app_opened": 1, "(other)": 1},
        2: {"tab_c": 2, "tab_a": 1, "(end)": 1},
        3: {"tab_b": 1, "(end)": 3},
    }


def test_previous_path_in_the_anchor_session(warehouse):
    # q5: tab_a, then 2 h later tab_b, tab_c, purchase: the session holds tab_b, tab_c; q6: the purchase alone in
    # its session; q7: tab_c twice (one step), purchase twice (the first anchors)
    assert step_matrix(warehouse, "prv") == {
        -2: {"tab_b": 1, "(start)": 2},
        -1: {"tab_c": 2, "(start)": 1},
        0: {"purchase_made": 3},
    }
    sequences = query(
        warehouse, "select sequence, users from marts.path_top_sequences where path_id = 'prv' order by sequence_rank"
    )
    assert sequences == [
        ("(start) > purchase_made", 1), ("(start) > tab_c > purchase_made", 1), ("tab_b > tab_c > purchase_made", 1)
    ]  # fmt: skip


def test_path_top_sequences_and_transitions(warehouse):
    sequences = query(
        warehouse,
        "select sequence_rank, sequence, users, share_of_users from marts.path_top_sequences where path_id = 'nxt' "
        "order by sequence_rank",
    )
    # one user each: ties in the order of the text
    assert [(rank, text) for rank, text, _, _ in sequences] == [
        (1, "app_opened > (other) > (end)"),
        (2, "app_opened > tab_a > tab_b > tab_c"),
        (3, "app_opened > tab_a > tab_c > (end)"),
        (4, "app_opened > tab_b > (end)"),
    ]
    assert all(users == 1 and share == pytest.approx(0.25) for _, _, users, share in sequences)
    flows = {
        (step, a, b): users
        for step, a, b, users in query(
            warehouse,
            "select from_step, from_node, to_node, users from marts.path_transitions where path_id = 'nxt'",
        )
    }
    assert flows == {
        (0, "app_opened", "tab_a"): 2, (0, "app_opened", "tab_b"): 1, (0, "app_opened", "(other)"): 1,
        (1, "tab_a", "tab_b"): 1, (1, "tab_a", "tab_c"): 1, (1, "tab_b", "(end)"): 1, (1, "(other)", "(end)"): 1,
        (2, "tab_b", "tab_c"): 1, (2, "tab_c", "(end)"): 1,
    }  # fmt: skip


def test_bad_path_definition_is_reported(warehouse):
    errors = dict(query(warehouse, "select path_id, config_error from intermediate.int_path_definitions"))
    assert errors["nxt"] is None
    assert errors["bad_path"].startswith("path 'bad_path': ")
    assert "direction 'sideways' is not one of next, previous" in errors["bad_path"]
    assert "depth '99' is not a whole number from 1 to 10" in errors["bad_path"]
    assert "session_bounded 'maybe' is not true or false" in errors["bad_path"]
    assert query(warehouse, "select count(*) from marts.path_steps where path_id = 'bad_path'") == [(0,)]


def test_user_level_breakdowns(warehouse):
    def first_step(funnel: str) -> dict[str, int]:
        return dict(
            query(
                warehouse,
                "select breakdown_value, users from marts.funnel_conversion where funnel_id = ? and grain = 'all' "
                "and step_number = 1",
                [funnel],
            )
        )

    # the user's own values today: u1 pro, u3 free (identify traits); clusters u1, u10, u11 (ml.user_clusters)
    assert first_step("by_plan") == {"(all)": 15, "pro": 1, "free": 1, "unknown": 13}  # int_users' own fallback
    assert first_step("by_cluster") == {"(all)": 15, "power users": 1, "casual": 2, "(none)": 12}
    segments = dict(query(warehouse, "select user_id, rfm_segment from marts.user_segments"))
    expected: dict[str, int] = {"(all)": 15}
    for user in ABC_USERS:
        expected[segments[user]] = expected.get(segments[user], 0) + 1
    assert first_step("by_segment") == expected and len(expected) > 2
    # step 3 by plan: u1 (pro) and u3 (free) both ordered
    rows = query(
        warehouse,
        "select breakdown_value, users from marts.funnel_conversion where funnel_id = 'by_plan' and grain = 'all' "
        "and step_number = 3 and breakdown_value in ('pro', 'free') order by 1",
    )
    assert rows == [("free", 1), ("pro", 1)]
