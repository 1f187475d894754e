"""The profile API (live/api.py) over real HTTP on a real Redis: answers, errors, paging, read keys apart from the
collector's write keys, and the app checked against its own OpenAPI schema by schemathesis."""

from __future__ import annotations

import threading

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from live.api import create_api
from live.consumer import Consumer
from live.definitions import load_definitions
from live.openapi import openapi_schema
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
