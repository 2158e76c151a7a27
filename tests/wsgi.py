"""The whole API as one WSGI app, in-process: each request becomes the API Gateway v2 event of its route and
is handed to that route's function (tests.support routes and builds events from template.yaml).

Like API Gateway's JWT authorizer, a route with an authorizer needs a valid `Authorization: Bearer <token>`
(here: `FUZZ_TOKEN`): with it, the caller is `FUZZ_USER`; without, API Gateway's own `401`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from local.routing import is_text_content
from tests import support

FUZZ_USER = "fuzz-user"
FUZZ_TOKEN = "fuzz-token"  # the one token this stand-in authorizer "verifies"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _event(environ: dict[str, Any]) -> tuple[str, dict[str, Any]] | tuple[None, dict[str, Any]]:
    method = environ["REQUEST_METHOD"].upper()
    # WSGI decodes the path as latin-1; API Gateway hands functions the UTF-8-decoded path.
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace") or "/"
    raw_query = environ.get("QUERY_STRING", "")
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    # The test client does not undo Content-Encoding: ask for plain bodies (gzip is tested in test_docs).
    headers.pop("accept-encoding", None)
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""

    logical_id, route, params = support.route_for(method, path)
    event = support.base_event()
    event.update(routeKey=route.key, rawPath=path, rawQueryString=raw_query, headers=headers)
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    if body:
        text = None
        if is_text_content(headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    context = event["requestContext"]
    context.update(routeKey=route.key, requestId=str(uuid.uuid4()))
    context["http"].update(method=method, path=path, userAgent=headers.get("user-agent", ""))
    if route.authorizer is not None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != FUZZ_TOKEN:
            return None, event
        context["authorizer"] = {"jwt": {"claims": {"sub": FUZZ_USER}, "scopes": None}}
    return logical_id, event


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    logical_id, event = _event(environ)
    if logical_id is None:
        status, headers, body = 401, {"Content-Type": "application/json"}, b'{"message":"Unauthorized"}'
        headers["WWW-Authenticate"] = "Bearer"
    else:
        result = support.load_function(logical_id).lambda_handler(event, support.LambdaContext(logical_id))
        status = result["statusCode"]
        headers = dict(result.get("headers") or {})
        text = result.get("body") or ""
        body = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
        if "Content-Type" not in headers and body:
            headers["Content-Type"] = "application/json"  # what API Gateway assumes
    start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
    return [body]
