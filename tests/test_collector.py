"""The collector against a real uvicorn server on a loopback port: API answers, spool files, metrics, recovery."""

from __future__ import annotations

import gzip
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from collector import CollectorSettings
from collector.events import RequestInfo, prepare
from collector.spool import Spool
from event_contract import EVENT_NAME_PATTERN, EVENT_NAME_RE
from ingestion import IngestSettings
from ingestion.loader import ingest_landing
from settings import SettingError as SettingsError
from settings import parse_write_keys
from tests.collector_server import ThreadServer, landed_lines
from tests.conftest import query

KEYS = {"web-key": "web", "ios-key": "ios"}
WEB = ("web-key", "")


def settings_for(data_dir: Path, **overrides: object) -> CollectorSettings:
    values: dict[str, object] = {"data_dir": data_dir, "write_keys": KEYS, "rotate_seconds": 60.0}
    values.update(overrides)
    return CollectorSettings(**values)


def track(message_id: str | None = None, **fields: object) -> dict:
    row: dict[str, object] = {
        "type": "track",
        "messageId": message_id or uuid.uuid4().hex,
        "userId": "u1",
        "event": "Product Viewed",
        "timestamp": "2026-11-01T10:00:00.000Z",
        "properties": {"product_id": "p1"},
    }
    row.update(fields)
    return {key: value for key, value in row.items() if value is not None}


def metric(server: ThreadServer, name: str, **labels: str) -> float:
    """One sample of the collector's /metrics, 0 when it has not been counted yet."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0


def test_track_lands_in_the_contract_with_receivedat_skew_correction_and_source(data_dir):
    sent_at = datetime(2026, 11, 1, 12, 0, 10, tzinfo=UTC)  # the client's clock, hours off the server's
    with ThreadServer(settings_for(data_dir)) as server:
        before = datetime.now(UTC)
        answer = httpx.post(
            server.url + "/v1/track",
            auth=WEB,
            json=track("m1", timestamp="2026-11-01T12:00:00Z", sentAt=sent_at.isoformat(), context={"os": "ios"}),
        )
        after = datetime.now(UTC)
        assert answer.status_code == 200
        assert answer.json() == {"success": True}
        # fsync'ed before the 200: the line is in the open spool file already
        spooled = list((data_dir / "spool" / "collector").rglob("*.jsonl"))
        assert len(spooled) == 1 and spooled[0].read_bytes().count(b"\n") == 1
    # shutdown rotated it into the landing folder and removed the process's spool folder
    assert list((data_dir / "spool" / "collector").iterdir()) == []
    [line] = landed_lines(data_dir)
    received = datetime.fromisoformat(line["receivedAt"])
    assert before <= received <= after
    assert datetime.fromisoformat(line["timestamp"]) == received - timedelta(seconds=10)
    assert line["context"] == {
        "os": "ios",
        "collector": {"source": "web", "original_timestamp": "2026-11-01T12:00:00Z", "sent_at": sent_at.isoformat()},
    }
    assert (line["messageId"], line["type"], line["userId"], line["event"]) == ("m1", "track", "u1", "Product Viewed")


def test_without_sentat_the_timestamp_is_kept_and_without_timestamp_it_is_the_arrival(data_dir):
    with ThreadServer(settings_for(data_dir)) as server:
        assert httpx.post(server.url + "/v1/track", auth=WEB, json=track("kept")).status_code == 200
        assert httpx.post(server.url + "/v1/page", auth=WEB, json=track("now", timestamp=None, name="Home")).is_success
    kept, now = landed_lines(data_dir)
    assert kept["timestamp"] == "2026-11-01T10:00:00.000000Z"
    assert kept["context"]["collector"] == {
        "source": "web",
        "original_timestamp": kept["originalTimestamp"],
        "sent_at": None,
    }
    assert now["timestamp"] == now["receivedAt"]
    assert now["type"] == "page"  # the endpoint decides the type
    assert now["properties"] == {"product_id": "p1", "name": "Home"}


def test_write_keys_by_header_or_body_and_refusals(data_dir):
    with ThreadServer(settings_for(data_dir)) as server:
        url = server.url + "/v1/batch"
        assert httpx.post(url, auth=("ios-key", ""), json={"batch": [track("a")]}).status_code == 200
        assert httpx.post(url, json={"writeKey": "web-key", "batch": [track("b")]}).status_code == 200
        unknown = httpx.post(url, auth=("nope", ""), json={"batch": [track("c")]})
        assert unknown.status_code == 401
        assert unknown.json() == {"success": False, "code": "unknown_write_key", "message": "unknown write key"}
        assert httpx.post(url, json={"writeKey": "nope", "batch": [track("d")]}).status_code == 401
        missing = httpx.post(url, json={"batch": [track("e")]})
        assert (missing.status_code, missing.json()["code"]) == (401, "missing_write_key")
        bearer = httpx.post(url, headers={"Authorization": "Bearer x"}, json={"batch": [track("f")]})
        assert (bearer.status_code, bearer.json()["code"]) == (401, "unsupported_auth")
        assert metric(server, "collector_requests_rejected_total", reason="unknown_write_key") == 2
        assert metric(server, "collector_requests_total", endpoint="batch", status="401") == 4
    assert {(line["messageId"], line["context"]["collector"]["source"]) for line in landed_lines(data_dir)} == {
        ("a", "ios"),
        ("b", "web"),
    }


def test_size_limits_per_event_and_per_batch(data_dir):
    big = "x" * (33 * 1024)
    with ThreadServer(settings_for(data_dir)) as server:
        alone = httpx.post(server.url + "/v1/track", auth=WEB, json=track("big", properties={"blob": big}))
        assert alone.status_code == 400
        assert alone.json()["code"] == "event_too_large"
        assert "over the limit of 32768 bytes" in alone.json()["message"]

        mixed = httpx.post(
            server.url + "/v1/batch",
            auth=WEB,
            json={"batch": [track("ok1"), track("big2", properties={"blob": big}), track("ok2")]},
        )
        assert mixed.status_code == 200
        assert mixed.json()["accepted"] == 2
        assert [(r["index"], r["messageId"], r["code"]) for r in mixed.json()["rejected"]] == [
            (1, "big2", "event_too_large")
        ]

        huge = {"batch": [track(str(i), properties={"blob": "y" * 20_000}) for i in range(30)]}  # ~600 KB
        too_big = httpx.post(server.url + "/v1/batch", auth=WEB, json=huge)
        assert too_big.status_code == 400
        assert too_big.json()["code"] == "body_too_large"
        # a small gzip body that inflates past 500 KB is refused too
        bomb = gzip.compress(orjson.dumps({"batch": [track("z", properties={"blob": "0" * 600_000})]}))
        assert len(bomb) < 10_000
        inflated = httpx.post(server.url + "/v1/batch", auth=WEB, content=bomb, headers={"Content-Encoding": "gzip"})
        assert (inflated.status_code, inflated.json()["code"]) == (400, "body_too_large")
        assert metric(server, "collector_events_rejected_total", reason="event_too_large") == 2
        assert metric(server, "collector_requests_rejected_total", reason="body_too_large") == 2
    assert sorted(line["messageId"] for line in landed_lines(data_dir)) == ["ok1", "ok2"]


def test_malformed_json_and_malformed_batches_are_refused_whole(data_dir):
    with ThreadServer(settings_for(data_dir)) as server:
        url = server.url + "/v1/batch"
        for body, code in [
            (b'{"batch": [', "invalid_json"),
            (b"[1, 2]", "invalid_json"),
            (b'{"batch": {"type": "track"}}', "invalid_batch"),
        ]:
            answer = httpx.post(url, auth=WEB, content=body)
            assert (answer.status_code, answer.json()["code"]) == (400, code), body
        assert "malformed JSON" in httpx.post(url, auth=WEB, content=b"{nope").json()["message"]
        assert metric(server, "collector_requests_rejected_total", reason="invalid_json") == 3
    assert landed_lines(data_dir) == []


def test_bad_events_in_a_batch_are_rejected_one_by_one_and_the_rest_kept(data_dir):
    batch = [
        track("good1"),
        track("noid", userId=None),
        track("noname", event=None),
        track("badtime", timestamp="yesterday"),
        track("good2", type="identify", event=None, traits={"plan": "pro"}),
        "not an object",
        track("weird", type="purchase"),
        track("props", properties=[1, 2]),
        track("future", timestamp=(datetime.now(UTC) + timedelta(days=3)).isoformat()),
        track("badname", event="!!!"),
    ]
    with ThreadServer(settings_for(data_dir)) as server:
        answer = httpx.post(server.url + "/v1/batch", auth=WEB, json={"batch": batch})
        assert answer.status_code == 200
        body = answer.json()
        assert (body["success"], body["accepted"], body["rejected_count"]) == (True, 2, 8)
        assert [(r["index"], r["code"]) for r in body["rejected"]] == [
            (1, "missing_id"),
            (2, "missing_event_name"),
            (3, "bad_timestamp"),
            (5, "not_an_object"),
            (6, "unknown_type"),
            (7, "field_not_an_object"),
            (8, "future_timestamp"),
            (9, "malformed_event_name"),
        ]
        assert body["rejected"][2]["reason"] == "unparseable timestamp: yesterday"
        assert metric(server, "collector_events_rejected_total", reason="missing_id") == 1
        assert metric(server, "collector_events_accepted_total", source="web", type="track") == 1
        assert metric(server, "collector_events_accepted_total", source="web", type="identify") == 1
        # a batch with nothing valid in it is a 400, so the SDK logs it
        all_bad = httpx.post(server.url + "/v1/batch", auth=WEB, json={"batch": [track("x", userId=None)]})
        assert (all_bad.status_code, all_bad.json()["code"]) == (400, "missing_id")
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["good1", "good2"]


def test_gzip_bodies_and_corrupt_gzip(data_dir):
    body = gzip.compress(orjson.dumps({"batch": [track("g1"), track("g2")], "sentAt": "2026-11-01T10:00:00Z"}))
    with ThreadServer(settings_for(data_dir)) as server:
        url = server.url + "/v1/batch"
        ok = httpx.post(url, auth=WEB, content=body, headers={"Content-Encoding": "gzip"})
        assert ok.status_code == 200
        cut = httpx.post(url, auth=WEB, content=body[: len(body) // 2], headers={"Content-Encoding": "gzip"})
        assert (cut.status_code, cut.json()["code"]) == (400, "bad_gzip")
        junk = httpx.post(url, auth=WEB, content=b"not gzip at all", headers={"Content-Encoding": "gzip"})
        assert (junk.status_code, junk.json()["code"]) == (400, "bad_gzip")
        br = httpx.post(url, auth=WEB, content=b"{}", headers={"Content-Encoding": "br"})
        assert br.status_code == 415
    lines = landed_lines(data_dir)
    assert [line["messageId"] for line in lines] == ["g1", "g2"]
    # sentAt equal to timestamp: no skew, the event time is the arrival time
    assert all(line["timestamp"] == line["receivedAt"] for line in lines)


def test_group_and_alias_are_answered_but_not_spooled(data_dir):
    with ThreadServer(settings_for(data_dir)) as server:
        group = httpx.post(server.url + "/v1/group", auth=WEB, json={"userId": "u1", "groupId": "acme"})
        alias = httpx.post(server.url + "/v1/a", auth=WEB, json={"userId": "u1", "previousId": "anon-1"})
        assert group.json() == alias.json() == {"success": True}
        assert metric(server, "collector_events_dropped_by_contract_total", type="group") == 1
        assert metric(server, "collector_events_dropped_by_contract_total", type="alias") == 1
        assert httpx.post(server.url + "/v1/nothing", auth=WEB, json={}).status_code == 404
    assert landed_lines(data_dir) == []


def test_rotation_by_event_count_and_by_age(data_dir):
    landing = data_dir / "landing" / "collector"
    with ThreadServer(settings_for(data_dir, rotate_events=3, rotate_seconds=0.6)) as server:
        for i in range(7):
            assert httpx.post(server.url + "/v1/track", auth=WEB, json=track(f"e{i}")).status_code == 200
        assert [p.read_bytes().count(b"\n") for p in sorted(landing.iterdir())] == [3, 3]
        health = httpx.get(server.url + "/health").json()
        assert health["spool_events"] == 1
        assert metric(server, "collector_spool_events") == 1
        assert metric(server, "collector_rotations_total") == 2
        for _ in range(40):  # the 7th event lands on its own once 0.6 s old
            if len(list(landing.iterdir())) == 3:
                break
            time.sleep(0.05)
        assert [p.read_bytes().count(b"\n") for p in sorted(landing.iterdir())] == [3, 3, 1]
        assert metric(server, "collector_spool_lag_seconds") == 0
    assert [line["messageId"] for line in landed_lines(data_dir)] == [f"e{i}" for i in range(7)]


def test_a_torn_spool_file_left_by_a_crash_is_recovered_whole_lines_only(data_dir):
    spool_root = data_dir / "spool" / "collector"
    spool_dir = spool_root / "p1-deadbeef"  # the folder of a process that died
    spool_dir.mkdir(parents=True)
    good = [
        orjson.dumps(
            {
                "messageId": f"r{i}",
                "userId": "u9",
                "type": "track",
                "event": "Clicked",
                "timestamp": "2026-11-01T10:00:00Z",
                "receivedAt": "2026-11-01T10:00:01Z",
                "context": {"collector": {"source": "web"}},
            }
        )
        for i in range(2)
    ]
    (spool_dir / "events-20261101T100000000000Z-p1-000001.jsonl").write_bytes(
        b"\n".join(good) + b'\n{"messageId": "r2", "userId": "u'
    )
    (spool_dir / "events-20261101T100001000000Z-p1-000002.jsonl").write_bytes(b'{"torn')  # nothing whole: dropped
    with ThreadServer(settings_for(data_dir)) as server:
        assert metric(server, "collector_recovered_files_total") == 1
        assert list(spool_root.rglob("*.jsonl")) == [] and not spool_dir.exists()
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["r0", "r1"]
    summary = ingest_landing(IngestSettings(data_dir=data_dir, settle_seconds=0))
    assert (summary.rows_in, summary.rows_loaded, summary.rows_rejected) == (2, 2, 0)
    assert query(data_dir, "select count(*) from raw.events") == [(2,)]


SPOOL_AND_DIE = """
import os, signal, sys
from pathlib import Path
from collector.spool import Spool
spool = Spool(Path(sys.argv[1]), Path(sys.argv[2]), rotate_events=100)
spool.open()
spool.write(b'{"messageId": "%s"}\\n' % sys.argv[3].encode(), 1)
print("spooled", flush=True)
if sys.argv[4] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()
"""


def test_processes_share_a_spool_root_and_a_dead_ones_folder_is_landed_by_the_next(tmp_path):
    root, landing = tmp_path / "spool", tmp_path / "landing"
    run = [sys.executable, "-c", SPOOL_AND_DIE, str(root), str(landing)]
    dead = subprocess.run([*run, "a", "die"], capture_output=True)
    assert dead.returncode == -signal.SIGKILL and dead.stdout == b"spooled\n"
    alive = subprocess.Popen([*run, "b", "live"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert alive.stdout.readline() == b"spooled\n"
        # the next process to start landed what the dead one spooled
        assert [path.read_bytes() for path in landing.iterdir()] == [b'{"messageId": "a"}\n']
        # and a live process's open file is left alone
        third = Spool(root, landing, rotate_events=100)
        assert third.open() == []
        assert [path.read_bytes() for path in root.rglob("*.jsonl")] == [b'{"messageId": "b"}\n']
    finally:
        alive.kill()
        alive.wait()
    assert [path.read_bytes() for path in Spool(root, landing, rotate_events=100).open()] == [b'{"messageId": "b"}\n']
    third.close()


def test_write_keys_from_the_environment():
    assert parse_write_keys(None) == {"dev": "dev"}
    assert parse_write_keys(" k1:web , k2:ios ") == {"k1": "web", "k2": "ios"}
    for bad in ("k1", "k1:", ":web", "k1:web,k1:ios", " , "):
        with pytest.raises(SettingsError, match="COLLECTOR_WRITE_KEYS"):
            parse_write_keys(bad)


# (name, well-formed), written out by hand rather than derived from the pattern.
EVENT_NAMES = [
    ("Order Completed", True),
    ("order_completed", True),
    ("orderCompleted", True),
    ("a", True),
    ("7", True),
    ("1st Purchase", True),
    ("Checkout: Step 2/3 (card) & 'gift'-wrap.", True),
    ("under_score.dot:colon/slash&amp(paren)'quote'-dash", True),
    ("a" * 200, True),
    ("a" * 201, False),
    ("a" * 199 + "-", True),
    ("a" * 199 + "é", False),
    ("", False),
    ("_private", False),
    ("-dash", False),
    (" leading space", False),
    ("(paren", False),
    ("trailing space ", True),  # the pattern alone: the collector strips a name first, ingestion trims it
    ("Café", False),
    ("éclair", False),
    ("Ünïcode", False),
    ("名前", False),
    ("Straße", False),
    ("\u212a", False),  # Kelvin sign, which case folding maps onto "k"
    ("\uff11\uff12\uff13", False),  # full-width digits one, two, three
    ("٣", False),  # Arabic-Indic digit three
    ("emoji 🎉", False),
    ("new\nline", False),
    ("trailing newline\n", False),
    ("tab\there", False),
    ("nul\x00byte", False),
    ("semi;colon", False),
    ("percent%", False),
    ("hash#", False),
    ('quote"double', False),
    ("back\\slash", False),
    ("a,b", False),
    ("plus+sign", False),
]


def test_the_event_name_pattern_reads_the_same_in_python_and_in_duckdb():
    """The collector matches event names with Python's re, ingestion with DuckDB's regexp_full_match (RE2)."""
    assert len({name for name, _ in EVENT_NAMES}) == len(EVENT_NAMES)
    con = duckdb.connect()
    con.execute("create table names (i integer, name varchar)")
    con.executemany("insert into names values (?, ?)", list(enumerate(name for name, _ in EVENT_NAMES)))
    sql = "select i, regexp_full_match(name, $pattern) from names"
    in_duckdb = dict(con.execute(sql, {"pattern": EVENT_NAME_PATTERN}).fetchall())
    for i, (name, expected) in enumerate(EVENT_NAMES):
        assert (bool(EVENT_NAME_RE.fullmatch(name)), in_duckdb[i]) == (expected, expected), repr(name)


def test_a_batch_level_context_applies_under_each_events_own_and_browsers_may_post(data_dir):
    batch = {
        "batch": [track("c1", context={"locale": "fr-FR"}), track("c2")],
        "context": {"locale": "de-DE", "ip": "x"},
    }
    with ThreadServer(settings_for(data_dir)) as server:
        assert httpx.post(server.url + "/v1/batch", auth=WEB, json=batch).status_code == 200
        preflight = httpx.options(
            server.url + "/v1/t",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
    first, second = landed_lines(data_dir)
    assert (first["context"]["locale"], first["context"]["ip"]) == ("fr-FR", "x")
    assert (second["context"]["locale"], second["context"]["ip"]) == ("de-DE", "x")


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == Path(__file__).stat().st_dev,
    reason="needs a second file system (/dev/shm) for the spool",
)
def test_a_spool_on_another_file_system_lands_by_copy_and_rename(data_dir):
    spool_dir = Path(f"/dev/shm/collector-test-{uuid.uuid4().hex}")
    try:
        with ThreadServer(settings_for(data_dir, spool_dir_override=spool_dir)) as server:
            assert httpx.post(server.url + "/v1/track", auth=WEB, json=track("x1")).status_code == 200
        assert [line["messageId"] for line in landed_lines(data_dir)] == ["x1"]
        assert list(spool_dir.rglob("*.jsonl")) == []
        assert [p.name for p in (data_dir / "landing" / "collector").iterdir() if p.name.startswith(".")] == []
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def test_events_are_normalised_the_segment_way():
    received = datetime(2026, 11, 2, 9, 0, 0, 500_000, tzinfo=UTC)
    info = RequestInfo(source="web", received_at=received, sent_at="2026-11-02T11:00:00+02:00")
    # an offset is converted to UTC; the batch's sentAt says the client clock is right, so nothing moves but transit
    accepted = prepare(track("a", timestamp="2026-11-02T10:59:00+02:00", userId=42), 0, info)
    line = orjson.loads(accepted.line)
    assert line["timestamp"] == "2026-11-02T08:59:00.500000Z"  # received - (sentAt - timestamp) = received - 60 s
    assert (line["userId"], line["receivedAt"]) == ("42", "2026-11-02T09:00:00.500000Z")
    # the event's own sentAt wins over the batch's
    own = orjson.loads(
        prepare(track("b", timestamp="2026-11-02T09:00:00Z", sentAt="2026-11-02T09:00:30Z"), 1, info).line
    )
    assert own["timestamp"] == "2026-11-02T08:59:30.500000Z"
    bad = prepare(track("c", sentAt="soon"), 2, info)
    assert (bad.code, bad.reason) == ("bad_sent_at", "unparseable sentAt: soon")
    # RudderStack's identify: traits inside context become the event's traits
    rudder = {"type": "identify", "messageId": "d", "anonymousId": "an", "context": {"traits": {"plan": "pro"}}}
    assert orjson.loads(prepare(rudder, 3, info).line)["traits"] == {"plan": "pro"}
    # no messageId: the same event gets the same generated id each time it is sent, another event another id
    first, again = prepare(track(None, messageId=None), 4, info), prepare(track(None, messageId=None), 5, info)
    other = prepare(track(None, messageId=None, event="Other"), 6, info)
    ids = [orjson.loads(a.line)["messageId"] for a in (first, again, other)]
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("collector-")
    assert prepare({"type": ["track"], "userId": "u"}, 7, info).code == "unknown_type"
    assert prepare(track("e", userId={"id": 1}), 8, info).code == "invalid_id"
