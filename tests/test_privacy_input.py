"""Privacy at the input: suppressed (erased) users dropped by ingestion and by the collector, and the optional
pseudonymisation of ids and trait/context fields at ingestion. Real landing files, real warehouses, a real server."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest

import settings as catalogue
from ingestion import IngestSettings, ingest_landing
from privacy.keys import SUBJECT, keyed_hash, privacy_key
from privacy.suppression import add_hashes
from settings import CollectorSettings, PrivacySettings, SettingError
from tests.collector_server import ThreadServer, landed_lines
from tests.conftest import event, query, settle, write_lines

KEY = "k3y-" + "0123456789abcdef" * 4
WEB = ("web-key", "")


def ingest_settings(data_dir: Path, **env: str) -> IngestSettings:
    values = {"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", "PRIVACY_KEY": KEY, **env}
    return catalogue.load(values).ingest


def collector_settings(data_dir: Path) -> CollectorSettings:
    values = {
        "DATA_DIR": str(data_dir),
        "PRIVACY_KEY": KEY,
        "COLLECTOR_WRITE_KEYS": "web-key:web",
        "COLLECTOR_ROTATE_SECONDS": "60",
    }
    return catalogue.load(values).collector


def suppress(privacy: PrivacySettings, *ids: str) -> None:
    """Put ids on the suppression list, as an erasure does."""
    key = privacy_key(privacy)
    add_hashes(privacy.suppression_path, [keyed_hash(key, SUBJECT, value) for value in ids])


def hmac_hex(purpose: str, value: str) -> str:
    return hmac.new(KEY.encode(), f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def manifest(data_dir: Path, file_name: str) -> tuple:
    [row] = query(
        data_dir,
        "select rows_in, rows_loaded, rows_duplicate, rejected, rows_erased, "
        "rows_in = rows_loaded + rows_duplicate + rejected + rows_erased from "
        "(select *, rows_rejected as rejected from raw.load_manifest where file_name = ?)",
        [file_name],
    )
    return row


def ids_loaded(data_dir: Path) -> set[str]:
    rows = query(data_dir, "select user_id, anonymous_id from raw.events")
    return {value for row in rows for value in row if value is not None}


# -- suppression at ingestion ---------------------------------------------------------------------------------------


def test_suppressed_users_rows_are_erased_by_user_id_and_by_anonymous_id_and_counted(data_dir):
    settings = ingest_settings(data_dir)
    suppress(settings.privacy, "gone-1", "anon-gone")
    lines = [
        event("m1", user_id="gone-1"),  # 1 erased (user_id)
        event("m2", user_id="u2"),  # 2 loaded
        event("m3", user_id=None, anonymous_id="anon-gone"),  # 3 erased (anonymous_id)
        event("m4", user_id="u3", anonymous_id="anon-gone"),  # 4 erased (anonymous_id, another user_id)
        event("m5", user_id="gone-1", timestamp="not-a-date"),  # 5 rejected and suppressed: erased
        '{"message_id": "m6", "user_id": "gone-1", broken',  # 6 rejected, no id can be read: rejected
        event("m7", user_id="u2", type="purchase"),  # 7 rejected (another user)
        event("m2", user_id="u2"),  # 8 duplicate of line 2
        event("m9", user_id="  gone-1 "),  # 9 erased: ids are trimmed before matching
        event("m10", user_id=None, anonymous_id="anon-1"),  # 10 loaded
        {"messageId": "m11", "userId": "gone-1", "event": "Signed Up", "timestamp": "2026-01-05T10:00:00Z"},  # 11
    ]
    write_lines(data_dir / "landing" / "mixed.jsonl", lines)

    summary = ingest_landing(settings)

    [result] = summary.files
    assert (result.rows_in, result.rows_loaded, result.rows_duplicate, result.rows_rejected, result.rows_erased) == (
        11,
        2,
        1,
        2,
        6,
    )
    assert result.reconciles and result.status == "loaded" and summary.rows_erased == 6
    assert manifest(data_dir, "mixed.jsonl") == (11, 2, 1, 2, 6, True)
    # raw names the lines of the file as it is now, without the 6 erased lines (1, 3, 4, 5, 9, 11)
    assert sorted(query(data_dir, "select message_id, user_id, anonymous_id, source_line from raw.events")) == [
        ("m10", None, "anon-1", 5),
        ("m2", "u2", None, 1),
    ]
    assert sorted(query(data_dir, "select line_number from raw.events_rejected")) == [(2,), (3,)]
    kept = (data_dir / "landing" / "mixed.jsonl").read_text().splitlines()
    assert [kept[0], kept[4]] == [orjson.dumps(lines[1]).decode(), orjson.dumps(lines[9]).decode()]
    assert kept[1].startswith('{"message_id": "m6"') and '"m7"' in kept[2]
    # the manifest knows the file as it is now: the next run does not load it again
    assert ingest_landing(settings).files == []


def test_a_result_that_does_not_count_its_erased_rows_does_not_reconcile(data_dir):
    settings = ingest_settings(data_dir)
    suppress(settings.privacy, "gone-1")
    write_lines(data_dir / "landing" / "a.jsonl", [event("a1", user_id="gone-1"), event("a2", user_id="u2")])
    [result] = ingest_landing(settings).files
    assert (result.rows_in, result.rows_loaded, result.rows_erased) == (2, 1, 1) and result.reconciles
    assert not replace(result, rows_erased=0).reconciles


def test_suppressed_user_in_a_gzip_jsonl_and_in_a_csv_file(data_dir):
    settings = ingest_settings(data_dir)
    suppress(settings.privacy, "gone-1")
    landing = data_dir / "landing"
    write_lines(
        landing / "a.jsonl.gz",
        [event("g1", user_id="gone-1"), event("g2", user_id="u2"), event("g3", anonymous_id="x", user_id="gone-1")],
        compress=True,
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["messageId", "userId", "anonymousId", "type", "event", "timestamp", "traits"])
    writer.writerow(["c1", "u2", "", "track", "Feature Used", "2026-01-05T10:00:00Z", ""])  # line 2
    writer.writerow(["c2", "", "gone-1", "identify", "", "2026-01-05T10:00:00Z", '{"email": "g@x"}'])  # line 3
    writer.writerow(["c3", "gone-1", "", "track", "Feature Used", "2026-01-05T10:00:00Z", "{broken"])  # line 4
    writer.writerow(["c4", "u4", "", "track", "Feature Used", "2026-01-05T10:00:00Z", ""])  # line 5
    (landing / "b.csv").write_text(buffer.getvalue())
    settle(landing / "b.csv")

    summary = ingest_landing(settings)

    by_file = {r.file_name: (r.rows_in, r.rows_loaded, r.rows_rejected, r.rows_erased) for r in summary.files}
    assert by_file == {"a.jsonl.gz": (3, 1, 0, 2), "b.csv": (4, 2, 0, 2)}
    assert all(r.reconciles for r in summary.files)
    assert manifest(data_dir, "a.jsonl.gz") == (3, 1, 0, 0, 2, True)
    assert manifest(data_dir, "b.csv") == (4, 2, 0, 0, 2, True)
    assert sorted(query(data_dir, "select message_id, source_line from raw.events")) == [
        ("c1", 2),
        ("c4", 3),  # physical lines 3 and 4 went
        ("g2", 1),
    ]
    assert "gone-1" not in ids_loaded(data_dir)
    assert query(data_dir, "select count(*) from raw.events_rejected") == [(0,)]


def test_without_a_suppression_list_nothing_is_erased_and_the_file_is_left_as_it_is(data_dir):
    settings = ingest_settings(data_dir)
    path = write_lines(data_dir / "landing" / "a.jsonl", [event("a1", user_id="gone-1"), event("a2")])
    before = path.read_bytes(), path.stat().st_mtime
    [result] = ingest_landing(settings).files
    assert (result.rows_in, result.rows_loaded, result.rows_erased) == (2, 2, 0) and result.reconciles
    assert (path.read_bytes(), path.stat().st_mtime) == before
    assert manifest(data_dir, "a.jsonl") == (2, 2, 0, 0, 0, True)
    # a list naming nobody in the file: nothing erased, the file untouched
    suppress(settings.privacy, "someone-else")
    write_lines(data_dir / "landing" / "b.jsonl", [event("b1", user_id="gone-1")])
    [result] = ingest_landing(settings).files
    assert (result.rows_loaded, result.rows_erased) == (1, 0)


# -- suppression in the collector -------------------------------------------------------------------------------------


def track(message_id: str, **fields: object) -> dict:
    row = {"type": "track", "messageId": message_id, "userId": "u1", "event": "Product Viewed"}
    row.update(fields)
    return {key: value for key, value in row.items() if value is not None}


def metric(server: ThreadServer, name: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return 0.0


def spooled_ids(data_dir: Path) -> list[str]:
    """messageIds in the open spool files of the running collector."""
    lines = []
    for path in sorted((data_dir / "spool" / "collector").rglob("*.jsonl")):
        lines += [orjson.loads(line)["messageId"] for line in path.read_bytes().splitlines()]
    return lines


def test_the_collector_answers_suppressed_events_but_does_not_spool_them(data_dir):
    settings = collector_settings(data_dir)
    suppress(settings.privacy, "gone-1", "anon-gone", "42")
    batch = [
        track("s1", userId="gone-1"),
        track("k1", userId="u2"),
        track("s2", userId=None, anonymousId="anon-gone"),
        track("s3", userId="u3", anonymousId="anon-gone"),
        track("s4", userId=42),  # numbers are ids as text
        {"type": "identify", "messageId": "k2", "anonymousId": "anon-1", "traits": {"plan": "pro"}},
        {"type": "alias", "messageId": "k3", "userId": "gone-1", "previousId": "x"},  # not spooled anyway
    ]
    with ThreadServer(settings) as server:
        answer = httpx.post(server.url + "/v1/batch", auth=WEB, json={"batch": batch})
        assert (answer.status_code, answer.json()) == (200, {"success": True})
        single = httpx.post(server.url + "/v1/track", auth=WEB, json=track("s5", userId="gone-1"))
        assert (single.status_code, single.json()) == (200, {"success": True})
        assert spooled_ids(data_dir) == ["k1", "k2"]
        assert metric(server, "collector_events_suppressed_total") == 5
        assert metric(server, "collector_spooled_events_total") == 2
        assert metric(server, 'collector_events_accepted_total{source="web",type="track"}') == 6
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["k1", "k2"]


def test_a_list_written_while_the_collector_runs_is_picked_up(data_dir):
    settings = collector_settings(data_dir)
    with ThreadServer(settings) as server:
        assert httpx.post(server.url + "/v1/track", auth=WEB, json=track("before", userId="gone-1")).is_success
        assert metric(server, "collector_events_suppressed_total") == 0
        suppress(settings.privacy, "gone-1")
        time.sleep(1.2)  # the list is looked at again at most once a second
        assert httpx.post(server.url + "/v1/track", auth=WEB, json=track("after", userId="gone-1")).is_success
        assert httpx.post(server.url + "/v1/track", auth=WEB, json=track("other", userId="u2")).is_success
        assert metric(server, "collector_events_suppressed_total") == 1
    assert [line["messageId"] for line in landed_lines(data_dir)] == ["before", "other"]


# -- pseudonymisation at ingestion ------------------------------------------------------------------------------------


def identify_lines() -> list[dict | str]:
    return [
        event("p1", user_id="u1", type="identify", event=None, traits={"email": "a@b.c", "plan": "pro"},
              context={"ip": "10.0.0.1", "locale": "fr"}),  # 1
        event("p2", user_id=None, anonymous_id="anon-1", context={"ip": None, "locale": "de"}),  # 2
        event("p3", user_id="u1", anonymous_id="anon-1", context={"ip": 17}),  # 3: a number hashed as its text
        event("p4", user_id="u2", timestamp="not-a-date", traits={"email": "x@y.z"}),  # 4 rejected
        event("p5", user_id="gone-1", traits={"email": "g@o.ne"}),  # 5 suppressed: matched on the clear id
        event("p6", user_id="u3"),  # 6 no traits, no context
    ]  # fmt: skip


def test_pseudonymisation_replaces_ids_drops_and_hashes_fields_and_redacts_rejected_lines(data_dir):
    settings = ingest_settings(
        data_dir, PSEUDONYMISE_IDS="true", PRIVACY_DROP_FIELDS="traits.email", PRIVACY_HASH_FIELDS="context.ip"
    )
    suppress(settings.privacy, "gone-1")
    write_lines(data_dir / "landing" / "p.jsonl", identify_lines())

    [result] = ingest_landing(settings).files

    assert (result.rows_in, result.rows_loaded, result.rows_rejected, result.rows_erased) == (6, 4, 1, 1)
    assert result.reconciles
    rows = {
        row[0]: row[1:]
        for row in query(data_dir, "select message_id, user_id, anonymous_id, traits, context from raw.events")
    }
    u1, u3, anon = hmac_hex("pseudonym", "u1"), hmac_hex("pseudonym", "u3"), hmac_hex("pseudonym", "anon-1")
    assert {key: value[:2] for key, value in rows.items()} == {
        "p1": (u1, None),
        "p2": (None, anon),
        "p3": (u1, anon),
        "p6": (u3, None),
    }
    assert orjson.loads(rows["p1"][2]) == {"plan": "pro"}
    assert orjson.loads(rows["p1"][3]) == {"ip": hmac_hex("field", "10.0.0.1"), "locale": "fr"}
    assert orjson.loads(rows["p2"][3]) == {"ip": None, "locale": "de"}  # a JSON null stays null
    assert orjson.loads(rows["p3"][3]) == {"ip": hmac_hex("field", "17")}
    assert rows["p6"][2:] == (None, None)
    # the rejected row keeps its line and reason, not its clear text
    assert query(data_dir, "select line_number, reason, raw_line from raw.events_rejected") == [
        (4, "unparseable timestamp: not-a-date", None)
    ]
    assert not {"u1", "u2", "u3", "anon-1", "gone-1"} & ids_loaded(data_dir)


def test_pseudonymisation_is_off_by_default(data_dir):
    settings = ingest_settings(data_dir)
    assert not settings.privacy.pseudonymise_ids and settings.privacy.drop_fields == ()
    write_lines(data_dir / "landing" / "p.jsonl", identify_lines())
    [result] = ingest_landing(settings).files
    assert (result.rows_loaded, result.rows_rejected, result.rows_erased) == (5, 1, 0)
    assert ids_loaded(data_dir) == {"u1", "u3", "anon-1", "gone-1"}
    [(traits, context)] = query(data_dir, "select traits, context from raw.events where message_id = 'p1'")
    assert orjson.loads(traits)["email"] == "a@b.c" and orjson.loads(context)["ip"] == "10.0.0.1"
    [(raw_line,)] = query(data_dir, "select raw_line from raw.events_rejected")
    assert orjson.loads(raw_line)["user_id"] == "u2"


def test_dropping_a_field_alone_needs_no_key_and_redacts_rejected_lines(data_dir):
    settings = catalogue.load(
        {"DATA_DIR": str(data_dir), "SETTLE_SECONDS": "0", "PRIVACY_DROP_FIELDS": "traits.email, context.ip"}
    ).ingest
    write_lines(data_dir / "landing" / "p.jsonl", identify_lines())
    [result] = ingest_landing(settings).files
    assert (result.rows_loaded, result.rows_rejected) == (5, 1)
    assert ids_loaded(data_dir) == {"u1", "u3", "anon-1", "gone-1"}  # ids untouched
    contexts = dict(query(data_dir, "select message_id, context from raw.events"))
    assert orjson.loads(contexts["p1"]) == {"locale": "fr"} and orjson.loads(contexts["p3"]) == {}
    assert query(data_dir, "select count(*) from raw.events where traits::varchar like '%email%'") == [(0,)]
    assert query(data_dir, "select raw_line from raw.events_rejected") == [(None,)]
    assert not settings.privacy.key_path.exists()


def test_pseudonymised_ids_need_a_privacy_key(tmp_path):
    with pytest.raises(SettingError, match="PSEUDONYMISE_IDS=true needs PRIVACY_KEY"):
        catalogue.load({"DATA_DIR": str(tmp_path), "PSEUDONYMISE_IDS": "true"})
    with pytest.raises(SettingError, match=r"both name traits\.email"):
        catalogue.load(
            {
                "DATA_DIR": str(tmp_path),
                "PRIVACY_DROP_FIELDS": "traits.email",
                "PRIVACY_HASH_FIELDS": "traits.email",
            }
        )
    assert catalogue.load({"DATA_DIR": str(tmp_path), "PSEUDONYMISE_IDS": "true", "PRIVACY_KEY": KEY}).ingest
