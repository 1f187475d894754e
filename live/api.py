"""The profile API: live profiles and live segment members over HTTP, on the collector's ASGI stack (Starlette and
uvicorn), on its own port, behind read keys of its own (LIVE_API_KEYS; the collector's write keys cannot read).

    GET /v1/profiles/{user_id}                     the live profile (docs/live.md), with segments and batch traits
    GET /v1/segments/{name}/members?cursor=&limit= a live segment's members, a page at a time
    GET /v1/recommendations/{user_id}?n=10         recommended products (the batch's, else the cluster's popular)
    GET /openapi.json                              the OpenAPI 3.1 schema (live/openapi.py)
    GET /health

Errors are JSON: {"error": code, "message": text}; 401 without a known key, 404 for an unknown user or segment,
400 for a bad parameter.
"""

from __future__ import annotations

import hmac
import logging

import orjson
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from live.definitions import load_definitions
from live.keys import Keys
from live.openapi import openapi_schema
from live.profiles import AsyncProfileReader, iso_time
from live.records import MAX_ID_CHARS
from settings import LiveSettings

log = logging.getLogger("live.api")
MAX_PAGE = 1000
MAX_RECOMMENDATIONS = 100


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": code, "message": message}, status)


def _user_id_error(user_id: str) -> Response | None:
    """The 400 answer for a user id no state can hold (empty or over MAX_ID_CHARS), else None."""
    if 0 < len(user_id) <= MAX_ID_CHARS:
        return None
    return _error(400, "bad_user_id", f"a user id has 1 to {MAX_ID_CHARS} characters")


class ProfileApi:
    """The app's state: the Redis (an asyncio client: a request never waits for a thread), the reader and the keys
    it accepts."""

    def __init__(self, settings: LiveSettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis if redis is not None else Redis.from_url(settings.redis_url)
        self.keys = Keys(settings.key_prefix)
        self.segments = tuple(s.name for s in load_definitions(settings.definitions_file).segments)
        gap_ms = int(settings.session_gap_minutes * 60_000)
        self.reader = AsyncProfileReader(self.redis, self.keys, gap_ms, self.segments)
        self._api_keys = [key.encode() for key in settings.api_keys]
        if settings.api_keys == {"dev": "dev"}:
            log.warning("LIVE_API_KEYS is not set: the profile API accepts the development key `dev`")

    def authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return False
        given = key.strip().encode()
        # every key compared in constant time: no early exit that tells how much of a key was right
        return any([hmac.compare_digest(given, known) for known in self._api_keys])

    async def profile(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if (refused := _user_id_error(user_id)) is not None:
            return refused
        found = await self.reader.read(user_id)
        if found is None:
            return _error(404, "unknown_user", "the live state knows nothing of this user (no event in its TTL)")
        return _json(found)

    async def recommendations(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if (refused := _user_id_error(user_id)) is not None:
            return refused
        try:
            n = int(request.query_params.get("n", "10"))
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_RECOMMENDATIONS:
            return _error(400, "bad_parameter", f"n is a whole number from 1 to {MAX_RECOMMENDATIONS}")
        found = await self.reader.recommendations(user_id, n)
        if found is None:
            return _error(404, "unknown_user", "neither the live state nor the last batch knows this user")
        return _json(found)

    async def members(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.segments:
            return _error(404, "unknown_segment", "not a live segment of the definitions file")
        cursor = request.query_params.get("cursor", "")
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _error(400, "bad_parameter", "limit is a whole number")
        if len(cursor) > MAX_ID_CHARS or not 1 <= limit <= MAX_PAGE:
            return _error(400, "bad_parameter", f"limit is from 1 to {MAX_PAGE}; cursor is a next_cursor given before")
        segment_keys = (self.keys.members(name), self.keys.member_index(name))
        return _json({"segment": name, **await _members_page(self.redis, segment_keys, cursor, limit)})

    def guarded(self, handler):
        """`handler` behind the API keys."""

        async def endpoint(request: Request) -> Response:
            if not self.authorised(request):
                return _error(401, "unknown_api_key", "send a profile API key as `Authorization: Bearer <key>`")
            return await handler(request)

        return endpoint


async def _not_routed(request: Request, exc: Exception) -> Response:
    if getattr(exc, "status_code", 404) == 405:
        response = _error(405, "method_not_allowed", "every endpoint answers GET only")
        response.headers["Allow"] = "GET"
        return response
    return _error(404, "not_found", "no such endpoint")


def create_api(settings: LiveSettings, redis: Redis | None = None) -> Starlette:
    """The profile API app for `settings` (a Redis client may be given, as the tests do)."""
    api = ProfileApi(settings, redis)

    async def schema(request: Request) -> Response:
        return _json(openapi_schema(api.segments))

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    return Starlette(
        exception_handlers={404: _not_routed, 405: _not_routed},
        routes=[
            Route("/v1/profiles/{user_id:path}", api.guarded(api.profile), methods=["GET"]),
            Route("/v1/segments/{name}/members", api.guarded(api.members), methods=["GET"]),
            Route("/v1/recommendations/{user_id:path}", api.guarded(api.recommendations), methods=["GET"]),
            Route("/openapi.json", schema, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
    )


async def _members_page(redis: Redis, segment_keys: tuple[str, str], after: str, limit: int) -> dict[str, object]:
    """Up to `limit` members with ids after `after`, in id order (a member present for the whole paging is returned
    exactly once), with their entry times."""
    members_key, index_key = segment_keys
    low = f"({after}" if after else "-"
    users = [user.decode() for user in await redis.zrange(index_key, low, "+", bylex=True, offset=0, num=limit)]
    entered = await redis.hmget(members_key, users) if users else []
    return {
        "size": await redis.zcard(index_key),
        "members": [
            {"user_id": user, "entered_at": iso_time(int(time))}
            for user, time in zip(users, entered, strict=True)
            if time is not None  # left the segment between the two reads
        ],
        "next_cursor": users[-1] if len(users) == limit else None,
    }
