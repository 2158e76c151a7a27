"""API Gateway HTTP API v2 events for the peers (Mangum reads the same payload as Powertools)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from tests import support


def v2_event(
    method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None, user: str = "alice"
) -> dict[str, Any]:
    event = support.base_event()
    event.update(
        routeKey=f"{method} {path}",
        rawPath=path,
        rawQueryString=urlencode(query or {}),
        headers={"content-type": "application/json", "user-agent": "bench", "host": "localhost"},
    )
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = json.dumps(body)
    context = event["requestContext"]
    context["http"].update(method=method, path=path)
    context.update(requestId=str(uuid.uuid4()), authorizer={"jwt": {"claims": {"sub": user}, "scopes": None}})
    return event


class Context:
    function_name = "peer"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:peer"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
