"""Demo event generator: real files in a temp folder, read back with plain Python, checked with the truth."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import re
import threading
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

import demo_events.writer
from demo_events import GeneratorConfig, Truth, generate, users_for_events
from demo_events.cli import main
from demo_events.config import CAMPAIGN_MEDIUM, CHANNELS, DAY_MS, DEVICES, FORMATS, PERSONAS
from demo_events.events import ORDER_COMPLETED
from demo_events.layout import camel_file_count
from demo_events.population import make_users, signup_days
from demo_events.simulate import simulate
from demo_events.writer import write_atomic

SMALL = GeneratorConfig(
    users=500,
    seed=7,
    file_rows=6_000,
    dirty_share=0.02,
    late_share=0.03,
    camel_share=0.3,
)
CAMEL_KEYS = {
    "messageId": "message_id",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "receivedAt": "received_at",
}
TRACK_EVENTS = {
    "Signed Up", "Product Viewed", "Product Added", "Order Completed", "Order Refunded", "Feature Used",
    "Search Performed", "Experiment Viewed", "Email Sent", "Coupon Applied", "Plan Upgraded",
}  # fmt: skip
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
DAY = timedelta(days=1)


# -- reading files back ------------------------------------------------------------------------------------


def read_file(path: Path) -> list[dict]:
    """Records of one landing file as dicts (absent or empty values left out, JSON text parsed)."""
    name = path.name
    if name.endswith(".parquet"):
        records = pq.read_table(path).to_pylist()
    elif ".csv" in name:
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        records = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    else:
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        return [orjson.loads(line) for line in raw.splitlines()]
    out = []
    for record in records:
        row = {key: value for key, value in record.items() if value not in (None, "")}
        for key in ("properties", "traits", "context"):
            if key in row:
                row[key] = orjson.loads(row[key])
        out.append(row)
    return out


def snake(record: dict) -> dict:
    return {CAMEL_KEYS.get(key, key): value for key, value in record.items()}


def parse_ts(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def defect_of(row: dict, seen: dict[str, dict]) -> str:
    """The planted defect of a row, judged from the row alone (and the message ids seen before it)."""
    mid = row.get("message_id")
    if mid is None:
        return "missing_message_id"
    if mid in seen:
        assert seen[mid] == row, "a duplicate must be an exact copy"
        return "duplicate"
    seen[mid] = row
    if "user_id" not in row and "anonymous_id" not in row:
        return "missing_user_ids"
    ts = parse_ts(row["timestamp"])
    if ts is None:
        return "bad_timestamp"
    if ts.year == 2999:
        return "future_timestamp"
    if row["type"] not in ("track", "page", "screen", "identify"):
        return "unknown_type"
    if row["type"] == "track" and "event" not in row:
        return "track_without_event"
    return "clean"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checksums(data_dir: Path) -> dict[str, str]:
    files = sorted((data_dir / "landing").iterdir()) + sorted((data_dir / "demo_truth").iterdir())
    return {f"{path.parent.name}/{path.name}": sha256(path) for path in files}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    truth = generate(SMALL, data_dir)
    return data_dir, truth


@pytest.fixture(scope="module")
def rows(dataset) -> list[dict]:
    """Every written row in write order, snake_case, with its file, naming style and defect."""
    data_dir, truth = dataset
    out: list[dict] = []
    seen: dict[str, dict] = {}
    for number, info in enumerate(truth.files):
        for record in read_file(data_dir / "landing" / info["name"]):
            row = snake(record)
            camel = any(key in CAMEL_KEYS for key in record)
            snake_style = any(key in CAMEL_KEYS.values() for key in record)
            out.append({"row": row, "file": number, "camel": camel, "snake": snake_style,
                        "defect": defect_of(row, seen)})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clean(rows) -> list[dict]:
    return [r["row"] for r in rows if r["defect"] == "clean"]


@pytest.fixture(scope="module")
def users(dataset) -> list[dict]:
    data_dir, _ = dataset
    return pq.read_table(data_dir / "demo_truth" / "users.parquet").to_pylist()


# -- files ---------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    config = replace(SMALL, users=150, file_rows=3_000)
    generate(config, tmp_path / "a")
    generate(config, tmp_path / "b")
    generate(replace(config, seed=8), tmp_path / "c")
    a, b, c = (checksums(tmp_path / name) for name in "abc")
    assert len(a) >= 7 and a == b
    assert set(a.values()).isdisjoint(c.values())


def test_files_are_complete_time_ordered_and_mixed(dataset, rows):
    data_dir, truth = dataset
    landing = sorted(p.name for p in (data_dir / "landing").iterdir())
    names = [info["name"] for info in truth.files]
    assert landing == names == sorted(names)  # nothing hidden or temporary left, names sort in write order
    assert all(re.fullmatch(r"events_\d{4}\.(jsonl|jsonl\.gz|csv|csv\.gz|parquet)", name) for name in names)
    assert {info["format"] for info in truth.files} == set(FORMATS)
    per_file = Counter(r["file"] for r in rows)
    assert [per_file[i] for i in range(len(names))] == [info["rows"] for info in truth.files]
    assert all(info["rows"] == SMALL.file_rows for info in truth.files[:-1])
    assert len(rows) == truth.rows_written
    # Rows follow received_at, apart from duplicates (copies keep their original's received_at).
    received = [parse_ts(r["row"]["received_at"]) for r in rows if r["defect"] != "duplicate"]
    assert all(a <= b for a, b in itertools.pairwise(received))


def test_camel_case_share_of_files(dataset, rows):
    _, truth = dataset
    camel_files = {i for i, info in enumerate(truth.files) if info["camel_case"]}
    assert len(camel_files) == round(SMALL.camel_share * len(truth.files)) >= 1
    assert [camel_file_count(0.25, n) for n in (1, 2, 3, 4, 6, 40)] == [0, 1, 1, 1, 2, 10]
    assert camel_file_count(0, 40) == 0
    for r in rows:
        assert r["camel"] == (r["file"] in camel_files)
        assert r["snake"] == (r["file"] not in camel_files)


def test_a_failed_write_leaves_only_complete_files(tmp_path, monkeypatch):
    lock, calls = threading.Lock(), []
    real = demo_events.writer.gzip_bytes

    def flaky(data, *args):
        with lock:
            calls.append(1)
            if len(calls) > 2:
                raise OSError("disk full")
        return real(data, *args)

    monkeypatch.setattr(demo_events.writer, "gzip_bytes", flaky)
    config = replace(SMALL, users=150, file_rows=3_000, file_format="jsonl.gz")
    with pytest.raises(OSError, match="disk full"):
        generate(config, tmp_path)
    written = sorted((tmp_path / "landing").iterdir())
    assert len(written) == 2 and all(re.fullmatch(r"events_\d{4}\.jsonl\.gz", p.name) for p in written)
    assert all(len(read_file(p)) == 3_000 for p in written)
    assert not (tmp_path / "demo_truth").exists()


def test_write_atomic_never_exposes_a_partial_file(tmp_path):
    target = tmp_path / "events_0001.jsonl"

    def half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b'{"message_id":"m1"')
        assert tmp.name.startswith(".")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_crash)
    assert list(tmp_path.iterdir()) == []
    write_atomic(target, lambda tmp: tmp.write_bytes(b"{}\n"))
    assert [p.name for p in tmp_path.iterdir()] == ["events_0001.jsonl"]


def test_single_format_and_rerun_replace_earlier_files(tmp_path):
    generate(replace(SMALL, users=150, file_rows=3_000), tmp_path)
    truth = generate(replace(SMALL, users=100, file_rows=20_000, file_format="parquet"), tmp_path)
    landing = sorted(p.name for p in (tmp_path / "landing").iterdir())
    assert landing == [info["name"] for info in truth.files] == ["events_0001.parquet"]


# -- defects, duplicates, late arrivals --------------------------------------------------------------------


def test_dirty_rows_per_kind_match_the_truth(dataset, rows):
    _, truth = dataset
    found = Counter(r["defect"] for r in rows)
    assert found.pop("clean") == truth.clean_events == truth.expected_unique_events
    assert dict(found) == {kind: n for kind, n in truth.dirty_rows.items() if n}
    assert set(truth.dirty_rows) == set(SMALL.dirty_mix)
    dirty = sum(truth.dirty_rows.values())
    assert dirty / truth.rows_written == pytest.approx(SMALL.dirty_share, abs=1e-4)
    for kind, share in SMALL.dirty_mix.items():
        assert abs(truth.dirty_rows[kind] - share * dirty) < 1
    assert truth.expected_rejects == {k: v for k, v in truth.dirty_rows.items() if k != "duplicate"}
    unique_ids = {r["row"]["message_id"] for r in rows if r["defect"] in ("clean", "duplicate")}
    assert len(unique_ids) == truth.expected_unique_events


def test_duplicates_land_in_the_same_and_in_later_files(dataset, rows):
    _, truth = dataset
    first_file = {}
    same = later = 0
    for r in rows:
        mid = r["row"].get("message_id")
        if r["defect"] == "duplicate":
            assert r["file"] >= first_file[mid]
            same += r["file"] == first_file[mid]
            later += r["file"] > first_file[mid]
        elif r["defect"] == "clean":
            first_file[mid] = r["file"]
    assert (same, later) == (truth.duplicates["same_file"], truth.duplicates["later_file"])
    assert same > 0 and later > 0


def test_late_arrivals_share_and_delay(dataset, clean):
    _, truth = dataset
    delays = [parse_ts(r["received_at"]) - parse_ts(r["timestamp"]) for r in clean]
    late = [d for d in delays if d >= DAY]
    assert len(late) == truth.late_arrivals == round(SMALL.late_share * truth.clean_events)
    assert all(d <= 5 * DAY for d in late)
    assert all(timedelta(0) < d < timedelta(seconds=31) for d in delays if d < DAY)


# -- the contract ------------------------------------------------------------------------------------------


def test_every_clean_row_follows_the_contract(clean):  # noqa: C901 - older than the complexity rule; split when next changed
    offsets = Counter()
    for row in clean:
        assert isinstance(row["message_id"], str) and row["message_id"]
        assert "user_id" in row or "anonymous_id" in row
        assert ISO.match(row["timestamp"]) and ISO.match(row["received_at"]), row
        assert row["received_at"].endswith("Z")
        offsets[row["timestamp"][-1] == "Z"] += 1
        for key in ("properties", "traits", "context"):
            assert isinstance(row.get(key, {}), dict)
        props = row.get("properties", {})
        kind = row["type"]
        if kind == "track":
            assert row["event"] in TRACK_EVENTS
            assert "user_id" in row and "anonymous_id" in row and "traits" not in row
        else:
            assert "event" not in row
        if kind in ("page", "screen"):
            assert isinstance(props["name"], str)
        if "user_id" not in row:
            assert kind == "page"  # before signup: anonymous web page views only
        if kind == "identify":
            assert set(row["traits"]) == {"email", "plan", "signup_channel", "country"}
            assert "user_id" in row and "anonymous_id" in row and "properties" not in row
        event = row.get("event")
        if event == "Order Completed":
            assert props["revenue"] > 0 and props["currency"] == "USD" and props["order_id"]
        elif event == "Order Refunded":
            assert props["revenue"] < 0 and props["currency"] == "USD" and props["order_id"]
        else:
            assert "revenue" not in props
        if event == "Feature Used":
            assert props["feature"] in ("dashboards", "export", "alerts", "sharing", "api")
        if event == "Experiment Viewed":
            assert props["experiment_id"] in ("checkout_redesign", "onboarding_2x2") and set(props) == {
                "experiment_id", "variant"}  # fmt: skip
        if event != "Email Sent":
            assert row["context"]["device"]["type"] in DEVICES
            assert row["context"]["os"]["name"] and row["context"]["locale"]
    share_z = offsets[True] / len(clean)
    assert 0.7 < share_z < 0.8  # 25% of rows carry the user's local offset


def test_signup_session_starts_anonymous_then_identifies(clean, users):
    by_anon = defaultdict(list)
    for row in clean:
        by_anon[row["anonymous_id"]].append(row)
    channel_of = {u["anonymous_id"]: u["channel"] for u in users}
    assert set(by_anon) == set(channel_of)
    for anon_id, events in by_anon.items():
        events.sort(key=lambda r: parse_ts(r["timestamp"]))
        identify = next(i for i, r in enumerate(events) if r["type"] == "identify")
        assert identify >= 1
        assert all("user_id" not in r and r["type"] == "page" for r in events[:identify])
        assert all("user_id" in r for r in events[identify:])
        assert events[identify + 1]["event"] == "Signed Up"
        medium = CAMPAIGN_MEDIUM[channel_of[anon_id]]
        assert all(r["context"]["campaign"]["medium"] == medium for r in events[: identify + 2])
        assert events[identify]["traits"]["signup_channel"] == channel_of[anon_id]
        assert len({r["user_id"] for r in events[identify:]}) == 1


# -- planted behaviour -------------------------------------------------------------------------------------


def test_persona_shares_as_configured(dataset, users):
    _, truth = dataset
    counts = Counter(u["persona"] for u in users)
    assert len(users) == truth.users == SMALL.users
    assert set(counts) == set(PERSONAS)
    for name, share in SMALL.persona_shares.items():
        assert abs(counts[name] - share * SMALL.users) <= 1
        assert truth.personas[name]["users"] == counts[name]
    means = {name: truth.personas[name]["mean_activity_events"] for name in PERSONAS}
    assert means["power_user"] > means["slow_churner"] > means["casual_browser"] > means["one_and_done"]
    assert truth.personas["discount_seeker"]["coupon_order_share"] > 0.5
    assert truth.personas["power_user"]["coupon_order_share"] < 0.2


def test_churn_depends_on_engagement_and_nothing_happens_after_it(dataset, users, clean):
    _, truth = dataset
    churned = [u["activity_rate"] for u in users if u["churned_by_end"]]
    retained = [u["activity_rate"] for u in users if not u["churned_by_end"]]
    assert len(churned) > 50 and len(retained) > 50
    assert np.mean(churned) < 0.7 * np.mean(retained)
    churn_at = {u["user_id"]: u["churn_at"] for u in users}
    end = SMALL.end
    emails_after = 0
    for row in clean:
        if "user_id" not in row:
            continue
        ts = parse_ts(row["timestamp"])
        assert ts <= end
        if row.get("event") == "Email Sent":
            emails_after += ts >= churn_at[row["user_id"]]
        elif row["type"] != "identify":
            assert ts < churn_at[row["user_id"]]
    assert emails_after == truth.emails_after_churn > 0


def test_experiment_exposure_and_conversions_match_the_truth(dataset, users, clean):
    _, truth = dataset
    exp = truth.experiment
    first_view, orders = {}, defaultdict(list)
    for row in clean:
        ts = parse_ts(row["timestamp"])
        if row.get("event") == "Experiment Viewed" and row["properties"]["experiment_id"] == "checkout_redesign":
            uid = row["user_id"]
            if uid not in first_view or ts < first_view[uid][0]:
                first_view[uid] = (ts, row["properties"]["variant"])
        elif row.get("event") == "Order Completed":
            orders[row["user_id"]].append(ts)
    exposed = {u["user_id"]: u for u in users if u["variant"] is not None}
    assert set(first_view) == set(exposed)
    start = datetime.fromisoformat(exp["start"])
    deadline = datetime.fromisoformat(exp["exposure_deadline"])
    converted = Counter()
    for uid, (ts, variant) in first_view.items():
        assert (ts, variant) == (exposed[uid]["exposed_at"], exposed[uid]["variant"])
        assert start <= ts <= deadline
        window = [t for t in orders[uid] if ts < t <= ts + 7 * DAY]
        assert len(window) <= 1  # organic orders in the window were replaced by the planted decision
        assert bool(window) == exposed[uid]["converted"]
        converted[variant] += bool(window)
    assert dict(converted) == {v: n for v, n in exp["converted"].items() if n}
    n = exp["exposed_users"]
    assert n == sum(exp["exposed"].values()) > 100
    assert abs(exp["exposed"]["treatment"] - n / 2) <= 3 * np.sqrt(n) / 2  # a fair coin, 3 sigma
    for variant in ("control", "treatment"):
        assert exp["conversion_rate"][variant] == exp["converted"][variant] / exp["exposed"][variant]
    assert exp["p_treatment"] == pytest.approx(exp["p_control"] * (1 + SMALL.lift))


def test_experiment_rates_follow_the_planted_probabilities():
    config = GeneratorConfig(users=40_000, seed=3, lift=0.5)
    sim = simulate(config, config.users, np.random.SeedSequence(3))
    variant, converted = sim.assignment.variant, sim.assignment.converted
    for v, p in ((0, config.p_control), (1, config.p_treatment)):
        members = converted[variant == v]
        assert abs(members.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(members))
    share_treatment = (variant == 1).sum() / (variant >= 0).sum()
    assert abs(share_treatment - 0.5) < 0.02


def test_signups_have_weekly_seasonality_growth_and_channel_retention():
    config = GeneratorConfig()
    users = make_users(config, 60_000, np.random.default_rng(1))
    first, weights = signup_days(config)
    calendar = first + np.arange(len(weights))  # every signup day, as days since the epoch (a Thursday)
    signups = np.bincount((users.signup_ms // 86_400_000 + 3) % 7, minlength=7)
    per_day = signups / np.bincount((calendar + 3) % 7, minlength=7)  # Monday first
    assert per_day[:5].min() > 1.3 * per_day[5:].max()
    first_month = (users.signup_ms < config.start_ms + 30 * 86_400_000).sum()
    last_month = (users.signup_ms > config.end_ms - 30 * 86_400_000).sum()
    assert last_month > 1.5 * first_month
    lifetime = [users.lifetime_days[users.channel == c].mean() for c in range(len(CHANNELS))]
    multipliers = [mult for _, mult in CHANNELS.values()]
    assert np.argsort(lifetime).tolist() == np.argsort(multipliers).tolist()
    assert ((users.churn_ms - users.signup_ms) / 86_400_000 >= 1 / 24).all()


# -- API and command line ----------------------------------------------------------------------------------


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="dirty_share"):
        GeneratorConfig(dirty_share=0.7)
    with pytest.raises(ValueError, match="persona"):
        GeneratorConfig(persona_shares={"nobody": 1.0})
    with pytest.raises(ValueError, match="file_format"):
        GeneratorConfig(file_format="xml")
    with pytest.raises(ValueError, match="probabilities"):
        GeneratorConfig(p_control=0.9, lift=0.5)


def test_cli_writes_and_summarises(tmp_path, capsys):
    args = f"--data-dir {tmp_path} --users 120 --seed 5 --file-rows 4000 --quiet --camel-share 0 --lift 0.3"
    code = main([*args.split(), "--end", "2026-06-30T00:00:00Z", "--months", "2"])
    assert code == 0
    out = capsys.readouterr().out.strip()
    truth = Truth.load(tmp_path / "demo_truth" / "truth.json")
    assert out.count("\n") == 0 and f"{truth.rows_written:,} rows" in out
    assert truth.users == 120 and truth.config["seed"] == 5 and truth.config["lift"] == 0.3
    assert truth.config["end"] == "2026-06-30T00:00:00Z"
    assert not any(info["camel_case"] for info in truth.files)


def test_events_target_scales_users():
    config = replace(SMALL, dirty_share=0.01)
    n = users_for_events(config, 600_000)
    sim = simulate(config, n, np.random.SeedSequence(11))
    rows = len(sim.events) / (1 - config.dirty_share)
    assert rows == pytest.approx(600_000, rel=0.1)


def test_pre_period_buyers_convert_more_often_at_the_same_average_rate():
    """The planted correlation CUPED feeds on: an order in the 28 days before the exposure multiplies the chance of
    converting by pre_buyer_rate_ratio (8), within 4 standard errors of the log ratio."""
    config = GeneratorConfig(users=40_000, seed=5)
    sim = simulate(config, config.users, np.random.SeedSequence(5))
    assignment, events = sim.assignment, sim.events
    exposure = assignment.exposed_ms[events.user]
    before = (events.kind == ORDER_COMPLETED) & (exposure >= 0) & (events.ts < exposure)
    before &= events.ts > exposure - config.pre_period_days * DAY_MS
    buyer = np.zeros(len(assignment.variant), dtype=bool)
    buyer[events.user[before]] = True
    exposed = assignment.variant >= 0
    converted = assignment.converted == 1
    n1, x1 = (exposed & buyer).sum(), (exposed & buyer & converted).sum()
    n0, x0 = (exposed & ~buyer).sum(), (exposed & ~buyer & converted).sum()
    assert n1 > 300 and n0 > 300
    se = np.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    assert abs(np.log((x1 / n1) / (x0 / n0)) - np.log(config.pre_buyer_rate_ratio)) < 4 * se
