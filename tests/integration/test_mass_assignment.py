"""Mass assignment: a body naming a server-owned field is refused (422) and stores nothing, on every route.

The routes come from openapi.json, so a new POST/PUT/PATCH route with a JSON body is covered when it lands.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import all_items
from tests.support import Api
from tools import openapi

SERVER_OWNED = {
    "created_by": "mallory",
    "message_count": 1_000,
    "created_at": "2000-01-01T00:00:00Z",
    "version": 99,
    "session_id": "session_0123456789abcdef",
}
# A valid body per route where `{}` is not one, so the extra field is the only thing wrong.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/sessions/cleanup"): {"session_ids": ["session_0123456789abcdef"]},
    ("post", "/api/v1/sessions/{session_id}/messages"): {"role": "user", "content": "hi"},
    ("post", "/api/v1/sessions/{session_id}/chat"): {"message": "hi"},
    ("post", "/api/v1/chat"): {"message": "hi"},
    ("post", "/api/v1/sessions/{session_id}/share"): {"recipients": ["bob@example.com"], "permissions": "view"},
    ("post", "/api/v1/sessions/{session_id}/comments"): {"content": "note", "comment_type": "note"},
    ("put", "/api/v1/sessions/{session_id}/slides"): {"slides": [{"slide_id": "slide-1", "html": "<h1>x</h1>"}]},
    ("put", "/api/v1/sessions/{session_id}/slides/{slide_id}"): {"html": "<h1>x</h1>"},
    ("post", "/api/v1/sessions/{session_id}/export"): {"format": "json"},
}


def json_body_routes() -> list[tuple[str, str, set[str]]]:
    """(method, path, the fields its body may legitimately carry) of every route with a JSON body."""
    spec = json.loads(openapi.OUTPUTS[0].read_text())
    schemas = spec["components"]["schemas"]

    def properties(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            return properties(schemas[schema["$ref"].rsplit("/", 1)[1]])
        names = set(schema.get("properties", {}))
        for key in ("anyOf", "oneOf", "allOf"):
            for part in schema.get(key, []):
                names |= properties(part)
        return names

    return [
        (method, path, properties(operation["requestBody"]["content"]["application/json"]["schema"]))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch")
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def snapshot(table: Any) -> list[dict[str, Any]]:
    return sorted(all_items(table), key=lambda item: (item["PK"], item["SK"]))


ROUTES = json_body_routes()


@pytest.mark.parametrize(("method", "path", "accepted"), ROUTES, ids=[f"{method} {path}" for method, path, _ in ROUTES])
def test_server_owned_fields_are_refused_and_nothing_is_stored(
    api: Api, table: Any, method: str, path: str, accepted: set[str]
) -> None:
    # Given the caller's own session
    session = api.create_session(title="mine")
    before = snapshot(table)
    concrete = re.sub(r"\{session_id\}", session["session_id"], path)
    concrete = re.sub(r"\{(\w+)\}", "x1", concrete)
    for field in sorted(set(SERVER_OWNED) - accepted):
        # When a body also names a field the server owns
        body = {**VALID_BODIES.get((method, path), {}), field: SERVER_OWNED[field]}
        result = api(method.upper(), concrete, body=body)
        # Then 422, naming the field, and the table is as it was
        assert result.status == 422, (field, result.status, result.body)
        assert result.problem["code"] == "validation_error"
        assert any(error["field"].split(".")[-1] == field for error in result.problem["errors"]), result.problem
        assert snapshot(table) == before
