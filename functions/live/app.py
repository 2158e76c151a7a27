"""Live streaming: the WebSocket API's routes ($connect, $disconnect, $default).

The connection's caller is what the $connect authorizer verified (functions/live_authorizer). Messages are
JSON: `{"action": "subscribe", "request_id", "after"}` follows a run (its events after `after`, then live,
pushed by the chat worker), `{"action": "chat", …}` starts one as `POST /chat/async` does and follows it.
Answers go back through the API's @connections endpoint; a bad message gets a `problem` message.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sessions_api import errors
from sessions_api.identity import caller_from_connection
from sessions_api.logic.live import Live
from sessions_api.observability import instrument, logger
from sessions_api.settings import get_settings


@cache
def live() -> Live:
    return Live(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    route, connection_id = request.get("routeKey"), request.get("connectionId", "")
    logger.append_keys(connection_id=connection_id, route=route)
    if route == "$disconnect":
        live().disconnect(connection_id)
        return {"statusCode": 200}
    try:
        caller = caller_from_connection(event)
    except errors.Unauthorized:
        return {"statusCode": 401}
    if route == "$connect":
        live().connect(caller, connection_id)
    else:
        live().receive(caller, connection_id, event.get("body") or "")
    return {"statusCode": 200}


lambda_handler = instrument(handler, correlation=None)
