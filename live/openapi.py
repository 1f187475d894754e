"""The profile API's OpenAPI 3.1 schema (served at /openapi.json; tests/test_live_api.py checks the app against it
with schemathesis)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "additionalProperties": False,
}
_WINDOWS = {
    "type": "object",
    "required": ["10m", "1h", "1d"],
    "properties": {name: {"type": "integer", "minimum": 0} for name in ("10m", "1h", "1d")},
    "additionalProperties": False,
}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_PROFILE = {
    "type": "object",
    "required": [
        "user_id",
        "anonymous_ids",
        "as_of",
        "last_seen_at",
        "last_event",
        "events",
        "sessions",
        "last_product_viewed",
        "last_order_at",
        "cart",
        "segments",
        "traits",
        "experiments",
    ],
    "properties": {
        "user_id": {"type": "string"},
        "anonymous_ids": {"type": "array", "items": {"type": "string"}},
        "as_of": _TIME,
        "last_seen_at": _NULLABLE_TIME,
        "last_event": {"type": ["string", "null"]},
        "events": _WINDOWS,
        "sessions": _WINDOWS,
        "last_product_viewed": {
            "type": ["object", "null"],
            "required": ["product_id", "at"],
            "properties": {"product_id": {"type": ["string", "null"]}, "at": _TIME},
        },
        "last_order_at": _NULLABLE_TIME,
        "cart": {
            "type": "object",
            "required": ["items", "value", "items_without_price"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["product_id", "quantity", "price", "added_at"],
                        "properties": {
                            "product_id": {"type": "string"},
                            "quantity": {"type": "integer", "minimum": 1},
                            "price": {"type": ["number", "null"], "minimum": 0},
                            "added_at": _TIME,
                        },
                    },
                },
                "value": {"type": "number", "minimum": 0},
                "items_without_price": {"type": "integer", "minimum": 0},
            },
        },
        "segments": {"type": "object", "additionalProperties": _TIME},
        "traits": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in ("rfm_segment", "lifecycle_stage", "cluster_name", "churn_risk_tier")
            },
            "additionalProperties": False,
        },
        "experiments": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_RECOMMENDATIONS = {
    "type": "object",
    "required": ["user_id", "source", "model_version", "recommendations"],
    "properties": {
        "user_id": {"type": "string"},
        "source": {"type": "string", "enum": ["item_item", "segment_popularity", "popularity"]},
        "model_version": {"type": ["string", "null"]},
        "recommendations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rank", "product_id", "score"],
                "properties": {
                    "rank": {"type": "integer", "minimum": 1},
                    "product_id": {"type": "string"},
                    "score": {"type": ["number", "null"]},
                },
            },
        },
    },
}  # fmt: skip


def _errors(*statuses: int) -> dict[str, Any]:
    described = {400: "a bad parameter", 401: "no known API key", 404: "not found"}
    return {
        str(status): {
            "description": described[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def openapi_schema(segments: tuple[str, ...]) -> dict[str, Any]:
    """The schema, with the live segments of the running definitions as the `name` parameter's values."""
    user_id = {
        "name": "user_id", "in": "path", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Live profile API",
            "version": "1",
            "description": "Live profiles and segments (docs/live.md)",
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "Profile": _PROFILE, "Recommendations": _RECOMMENDATIONS},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/profiles/{user_id}": {
                "get": {
                    "summary": "A user's live profile (a user id, or an anonymous id linked to one)",
                    "parameters": [user_id],
                    "responses": {
                        "200": {
                            "description": "the profile",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}},
                        },
                        **_errors(400, 401, 404),
                    },
                }
            },
            "/v1/recommendations/{user_id}": {
                "get": {
                    "summary": "Recommended products: the user's own from the last batch, else the most popular of "
                    "its cluster, else of everyone; products in its live cart left out",
                    "parameters": [
                        user_id,
                        {
                            "name": "n",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "up to n products, best first",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Recommendations"}}
                            },
                        },
                        **_errors(400, 401, 404),
                    },
                }
            },
            "/v1/segments/{name}/members": {
                "get": {
                    "summary": "A live segment's members, a page at a time (follow next_cursor until null)",
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "one page",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["segment", "size", "members", "next_cursor"],
                                        "properties": {
                                            "segment": {"type": "string", "enum": list(segments) or [""]},
                                            "size": {"type": "integer", "minimum": 0},
                                            "members": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["user_id", "entered_at"],
                                                    "properties": {"user_id": {"type": "string"}, "entered_at": _TIME},
                                                },
                                            },
                                            "next_cursor": {"type": ["string", "null"]},
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 401, 404),
                    },
                }
            },
        },
    }
