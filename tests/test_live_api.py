"""The profile API (live/api.py) over real HTTP on a real Redis: answers, errors, paging, read keys apart from the
collector's write keys, and the app checked against its own OpenAPI schema by schemathesis."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from live.api import create_api
from live.consumer import Consumer
from live.definitions import load_definitions
from live.keys import Keys
from live.openapi import openapi_schema
from live.traits import refresh_traits
from tests.collector_server import free_port, wait_healthy
from tests.redis_server import redis_server
from tests.test_live import at, land, live_settings, record

KEY = "reader-key"
SCHEMA = schemathesis.openapi.from_dict(openapi_schema(tuple(s.name for s in load_definitions(None).segments)))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    """The API on a free port over a Redis holding two users' state and 250 members of live segment hot_cart."""
    folder = tmp_path_factory.mktemp("api")
    with redis_server(folder) as url:
        settings = live_settings(folder, url, "api", LIVE_API_KEYS=f"{KEY}:shop")
        land(folder, "20260310T120000000000Z-p1-000001", [
            record("a1", at("2026-03-10T11:00:00"), event="Product Viewed", userId="u1",
                   properties={"product_id": "p1"}),
            record("a2", at("2026-03-10T11:01:00"), event="Product Added", userId="u1",
                   properties={"product_id": "p1", "price": 12.5}),
        ])  # fmt: skip
        consumer = Consumer(settings)
        consumer.poll()
        consumer.redis.hset("api:m:hot_cart", mapping={f"m{n:03d}": 1773140000000 + n for n in range(250)})
        consumer.redis.zadd("api:mi:hot_cart", {f"m{n:03d}": 0 for n in range(250)})
        published_batch(folder / "serving.duckdb")
        assert refresh_traits(consumer.redis, Keys("api"), folder / "serving.duckdb", 3600) == 3
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_api(settings.live), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        yield base
        server.should_exit = True
        thread.join(timeout=10)


def published_batch(path: Path) -> None:
    """A serving copy with what the batch knows: u1's experiment variants and recommendations, u9's cluster (no
    recommendations of its own), u8 with neither, and the popular products of cluster 'Browsers' and of everyone."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema ml; create schema meta")
        con.execute("create table meta.publish as select timestamp '2026-03-10 11:30:00' as published_at")
        con.execute("create table ml.user_clusters as select * from (values ('u9', 'Browsers'), ('u8', null)) "
                    "as t(user_id, cluster_name)")  # fmt: skip
        con.execute("create table marts.experiment_assignments as select * from (values "
                    "('u1', 'checkout_redesign', 'treatment', timestamp '2026-03-01'), "
                    "('u1', 'onboarding_2x2', 'tour_on+badge_off', timestamp '2026-03-02')) "
                    "as t(user_id, experiment_id, variant, exposed_at)")  # fmt: skip
        con.execute("create table ml.recommendations as select * from (values "
                    "('u1', 1, 'p1', 0.9, 'item_item', '3'), ('u1', 2, 'p7', 0.5, 'item_item', '3'), "
                    "('u1', 3, 'p8', 0.25, 'item_item', '3')) "
                    "as t(user_id, rank, product_id, score, source, model_version)")  # fmt: skip
        con.execute("create table ml.popular_products as select * from (values "
                    "('Browsers', 1, 'p5', 40, '3'), ('Browsers', 2, 'p6', 30, '3'), "
                    "('(all)', 1, 'p2', 90, '3'), ('(all)', 2, 'p5', 80, '3')) "
                    "as t(segment, rank, product_id, users, model_version)")  # fmt: skip


def get(base: str, path: str, key: str | None = KEY, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(base + path, headers=headers, params=params)


def test_a_profile_and_the_errors_an_app_can_get(api: str):
    found = get(api, "/v1/profiles/u1")
    assert found.status_code == 200
    body = found.json()
    assert (body["user_id"], body["last_event"], body["cart"]["value"]) == ("u1", "product_added", 12.5)
    assert body["last_product_viewed"] == {"product_id": "p1", "at": "2026-03-10T11:00:00Z"}
    missing = get(api, "/v1/profiles/nobody")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_user")
    assert "message" in missing.json()
    for key in (None, "wrong", "dev"):  # no key, an unknown one, the collector's development write key
        refused = get(api, "/v1/profiles/u1", key=key)
        assert (refused.status_code, refused.json()["error"]) == (401, "unknown_api_key")
    assert get(api, "/v1/profiles/" + "x" * 201).status_code == 400
    assert get(api, "/v1/segments/nope/members").json()["error"] == "unknown_segment"
    assert get(api, "/v1/segments/hot_cart/members", limit=5000).status_code == 400


def test_recommendations_the_batchs_own_else_the_clusters_else_everyones(api: str):
    own = get(api, "/v1/recommendations/u1", n=5).json()
    # p1 is in u1's live cart (added 11:01): left out
    assert own == {
        "user_id": "u1", "source": "item_item", "model_version": "3",
        "recommendations": [{"rank": 1, "product_id": "p7", "score": 0.5}, {"rank": 2, "product_id": "p8",
                            "score": 0.25}],
    }  # fmt: skip
    assert [r["product_id"] for r in get(api, "/v1/recommendations/u1", n=1).json()["recommendations"]] == ["p7"]
    cluster = get(api, "/v1/recommendations/u9").json()
    assert (cluster["source"], [r["product_id"] for r in cluster["recommendations"]]) == (
        "segment_popularity", ["p5", "p6"])  # fmt: skip
    everyone = get(api, "/v1/recommendations/u8").json()
    assert (everyone["source"], [r["product_id"] for r in everyone["recommendations"]]) == ("popularity", ["p2", "p5"])
    missing = get(api, "/v1/recommendations/nobody")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_user")
    for n in (0, 101, "ten"):
        assert get(api, "/v1/recommendations/u1", n=n).status_code == 400
    assert get(api, "/v1/recommendations/u1", key="dev").status_code == 401
    profile = get(api, "/v1/profiles/u1").json()
    assert profile["experiments"] == {"checkout_redesign": "treatment", "onboarding_2x2": "tour_on+badge_off"}
    assert profile["traits"] == {}  # u1 has no segment, cluster or churn score in this batch


def test_segment_members_page_by_page(api: str):
    seen: list[str] = []
    pages = []
    cursor = ""
    while cursor is not None:
        page = get(api, "/v1/segments/hot_cart/members", cursor=cursor, limit=100).json()
        pages.append(len(page["members"]))
        seen += [member["user_id"] for member in page["members"]]
        cursor = page["next_cursor"]
    assert pages == [100, 100, 50] and seen == [f"m{n:03d}" for n in range(250)]
    assert page["size"] == 250 and page["members"][0]["entered_at"] == "2026-03-10T10:53:20.200000Z"
    assert get(api, "/openapi.json", key=None).json()["openapi"] == "3.1.0"


@SCHEMA.parametrize()
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_openapi_schema_says(case, api: str):
    case.call_and_validate(base_url=api, headers={"Authorization": f"Bearer {KEY}"})
