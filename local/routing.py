"""What API Gateway (HTTP API, payload format 2.0) does around a Lambda call, without the network.

Route selection, the JWT authorizer's claims, the event the function receives, CORS, and the translation
of the function's result back into an HTTP response.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.template import ACCOUNT_ID, Cors, HttpApiSpec, RouteSpec

# The only request bodies API Gateway hands over as text; everything else (even a missing content type
# or a urlencoded form) arrives base64-encoded.
_TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_HOP_BY_HOP_HEADERS = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_STATIC, _VARIABLE, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request target as received: raw path, then `?` and the raw query string
    headers: list[tuple[str, str]]  # as received, in order, repeats kept
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


def write_response(handler: BaseHTTPRequestHandler, response: Response) -> None:
    """`response` on the wire of an http.server handler, as API Gateway writes it (no body for a HEAD)."""
    handler.send_response_only(response.status)
    handler.send_header("date", handler.date_time_string())
    for name, value in response.headers:
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(response.body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(response.body)


def gateway_response(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A response API Gateway writes itself, such as `404 {"message":"Not Found"}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Response(status, [("content-type", "application/json"), *headers], body)


# --- routes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match[T]:
    route: RouteSpec
    target: T
    path_parameters: dict[str, str]


def _segment_kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return _GREEDY
    if segment.startswith("{") and segment.endswith("}"):
        return _VARIABLE
    return _STATIC


class Router[T]:
    """API Gateway's route selection: the most specific route wins, `$default` catches the rest.

    Routes compare segment by segment from the left (a static segment beats `{param}`, which beats
    `{proxy+}`); at equal paths a route for the request's own method beats `ANY`.
    """

    def __init__(self, routes: Iterable[tuple[RouteSpec, T]]) -> None:
        self._routes: list[tuple[RouteSpec, T, list[str]]] = []
        self._default: tuple[RouteSpec, T] | None = None
        for route, target in routes:
            if route.path == "$default":
                self._default = (route, target)
            else:
                self._routes.append((route, target, route.path.split("/")[1:]))

    def match(self, method: str, raw_path: str) -> Match[T] | None:
        # Split before decoding, so an encoded `%2F` stays inside its segment (and its parameter).
        segments = raw_path.split("/")[1:]
        candidates = []
        for route, target, pattern in self._routes:
            if route.method not in ("ANY", method):
                continue
            parameters = _match_segments(pattern, segments)
            if parameters is not None:
                rank = ([_segment_kind(segment) for segment in pattern], route.method == "ANY")
                candidates.append((rank, Match(route, target, parameters)))
        if candidates:
            return min(candidates, key=lambda candidate: candidate[0])[1]
        if self._default is not None:
            return Match(self._default[0], self._default[1], {})
        return None


def _match_segments(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    parameters = {}
    for index, part in enumerate(pattern):
        kind = _segment_kind(part)
        if kind == _GREEDY:
            rest = "/".join(unquote(segment) for segment in segments[index:])
            if not rest:
                return None
            parameters[part[1:-2]] = rest
            return parameters
        if index >= len(segments):
            return None
        value = unquote(segments[index])
        if kind == _VARIABLE:
            if not value:
                return None
            parameters[part[1:-1]] = value
        elif value != part:
            return None
    return parameters if len(pattern) == len(segments) else None


def stage_path(api: HttpApiSpec, raw_path: str) -> str | None:
    """The path to route on: without the stage prefix of a named stage; None when it is not there."""
    if api.stage == "$default":
        return raw_path
    prefix = f"/{api.stage}"
    if raw_path == prefix or raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :] or "/"
    return None


# --- the authorizer ---------------------------------------------------------------------------------


def dev_claims(request: Request, default_user: str, now: float) -> dict[str, str] | None:
    """The JWT claims the local authorizer vouches for; None when there is no caller (→ 401).

    Like API Gateway's JWT authorizer, every claim value is a string.
    """
    user = request.header("x-dev-user") or default_user
    if not user:
        return None
    claims = {"sub": user, "iss": "local", "aud": "local", "iat": str(int(now)), "exp": str(int(now) + 3600)}
    email = request.header("x-dev-email")
    if email:
        claims.update(email=email, email_verified="true")  # the developer vouches for it, as an issuer would
    return claims


# --- the event --------------------------------------------------------------------------------------


def is_text_content(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES


def new_request_id() -> str:
    """An id shaped like API Gateway's (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def build_event(
    request: Request,
    match: Match[Any],
    api: HttpApiSpec,
    claims: Mapping[str, str] | None,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for `request` on the matched route."""
    raw_path, _, raw_query = request.target.partition("?")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(cookie.strip() for cookie in value.split(";") if cookie.strip())
        else:
            headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value

    # HTTP APIs hand over the path percent-decoded, in rawPath as well.
    path = unquote(raw_path)
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api.api_id,
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    request_context |= {
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.key,
        "stage": api.stage,
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    event["requestContext"] = request_context
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    is_base64 = False
    if request.body:
        text = _decoded_text(request.body) if is_text_content(headers.get("content-type")) else None
        is_base64 = text is None
        event["body"] = base64.b64encode(request.body).decode() if is_base64 else text
    event["isBase64Encoded"] = is_base64
    return event


def _decoded_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- the result -------------------------------------------------------------------------------------


def http_response(result: Any) -> Response:
    """API Gateway's reading of a format 2.0 result; raises ValueError where it would answer 500."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: the whole result is the JSON body of a 200.
        text = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("content-type", "application/json")], text.encode())

    status = int(result["statusCode"])
    multi_value = result.get("multiValueHeaders") or {}
    multi_value_names = {name.lower() for name in multi_value}
    headers = [
        (name, str(value))
        for name, value in (result.get("headers") or {}).items()
        if name.lower() not in multi_value_names
    ]
    headers += [(name, str(value)) for name, values in multi_value.items() for value in values]
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP_HEADERS]
    headers += [("set-cookie", cookie) for cookie in result.get("cookies") or ()]
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body, validate=True)
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    return Response(status, headers, data)


# --- CORS -------------------------------------------------------------------------------------------


def _allowed_origin(cors: Cors, origin: str | None) -> str | None:
    if origin is None:
        return None
    if "*" in cors.allow_origins:
        return "*"
    return origin if origin in cors.allow_origins else None


def is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and request.header("access-control-request-method") is not None


def with_cors(cors: Cors, request: Request, response: Response) -> Response:
    """The response with API Gateway's CORS headers in place of any the function set."""
    headers = [(name, value) for name, value in response.headers if not name.lower().startswith("access-control-")]
    origin = _allowed_origin(cors, request.header("origin"))
    if origin is not None:
        headers.append(("access-control-allow-origin", origin))
        if cors.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        if is_preflight(request):
            if cors.allow_methods:
                headers.append(("access-control-allow-methods", ",".join(cors.allow_methods)))
            if cors.allow_headers:
                headers.append(("access-control-allow-headers", ",".join(cors.allow_headers)))
            if cors.max_age is not None:
                headers.append(("access-control-max-age", str(cors.max_age)))
        elif cors.expose_headers:
            headers.append(("access-control-expose-headers", ",".join(cors.expose_headers)))
    return Response(response.status, headers, response.body)
