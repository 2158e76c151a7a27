"""HTTP edge shared by every function: the resolver, RFC 9457 problems, pre-checks and ETags.

Domain errors become HTTP responses here and nowhere else.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from pydantic import BaseModel, ConfigDict, Field

from sessions_api import errors, timeutil
from sessions_api.identity import Caller, caller_from_event
from sessions_api.observability import logger, metrics

PROBLEM_TYPE_BASE = "https://errors.sessions-api.dev/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 1024 * 1024
# Deeper JSON than any real request needs; past ~255 levels pydantic's serializer gives up (a 500).
MAX_BODY_DEPTH = 64
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# A JSON string escape of a UTF-16 surrogate: only then can a parsed body hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# Request headers routes declare as parameters, so the OpenAPI spec documents them.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A retry with the same key and body returns the first response and creates nothing new; "
        "1 to 255 printable ASCII characters",
        pattern=r"^[\x20-\x7e]{1,255}$",
        examples=["5f0c1c1e-6d0b-4b8f-9a57-1f7f6f0d2a43"],
    ),
]
# The pattern is documented, not enforced by validation: a cursor that is not one is `400 bad_request`.
Cursor = Annotated[
    str | None,
    Query(
        max_length=4096,
        description="`next_cursor` of the previous page (empty: the first page): opaque, signed, for the same listing "
        "and caller only",
        json_schema_extra={"pattern": r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$"},
    ),
]
# No pattern on these: a tag this API never issued is a stale one (If-Match: 412; If-None-Match: no match).
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The `ETag` you last read; `412` when it is no longer current",
        examples=['"3"'],
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="The `ETag` you hold; `304` when it is still current",
        examples=['"3"'],
    ),
]


class FieldError(BaseModel):
    field: str = Field(examples=["body.title"])
    message: str = Field(examples=["String should have at most 200 characters"])
    type: str | None = Field(default=None, examples=["string_too_long"])


class Problem(BaseModel):
    """An RFC 9457 problem: every error of this API, whatever the status."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://errors.sessions-api.dev/session_not_found",
                    "title": "Session not found",
                    "status": 404,
                    "detail": "Session session_0123456789abcdef does not exist",
                    "code": "session_not_found",
                    "instance": "/api/v1/sessions/session_0123456789abcdef",
                    "request_id": "JKJaXmPLvHcESHA=",
                    "timestamp": "2026-01-15T10:30:00.000Z",
                }
            ]
        },
    )

    type: str = Field(description="`https://errors.sessions-api.dev/<code>`")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable machine-readable error code", examples=["session_not_found"])
    instance: str = Field(description="The request path")
    request_id: str | None = Field(description="API Gateway's request id, also in every log line of the request")
    timestamp: str
    errors: list[FieldError] | None = Field(default=None, description="Validation details (`422`)")


# What each problem status means on any operation (the codes are in API.md and in `errors`).
PROBLEM_STATUSES: dict[int, str] = {
    400: "Malformed request: invalid JSON or UTF-8, or a bad cursor (`bad_request`)",
    401: "No verified identity: send `Authorization: Bearer <JWT>` (`unauthorized`)",
    402: "The session's budget is spent (`insufficient_balance`)",
    403: "Your share of this session does not allow this (`session_not_accessible`)",
    404: "No such resource, or not yours (`session_not_found`, `not_found`, ...)",
    409: "Conflicts with the current state (`invalid_state_transition`, `session_busy`, `session_expired`, `conflict`)",
    412: "`If-Match` does not match the current version (`precondition_failed`)",
    413: "The body is over 1 MiB (`payload_too_large`)",
    415: "The body is not `application/json` (`unsupported_media_type`)",
    422: "The request breaks the schema; `errors` lists each field (`validation_error`)",
    429: "Over a quota or rate limit (`session_quota_exceeded`, `rate_limited`); see `Retry-After`",
    500: "Unexpected error; never contains a stack trace (`internal_error`)",
    502: "The model failed and will fail again on retry; your message is stored (`model_error`)",
    503: "A backing service is unavailable; retry after `Retry-After` seconds (`service_unavailable`)",
}
_RETRY_AFTER_HEADER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
# Statuses API Gateway itself may answer, before or instead of a function, with its own `{"message": ...}`:
# no valid token (401), over the 10 MB payload limit (413), route throttling (429), integration failure (5xx).
GATEWAY_STATUSES = frozenset({401, 413, 429, 500, 503})


class GatewayError(BaseModel):
    """An answer API Gateway writes itself (not a problem: the request never reached the API's code)."""

    message: str = Field(examples=["Unauthorized"])


def problems(*statuses: int) -> dict[int, dict[str, Any]]:
    """`responses=` entries for problems a route adds to the ones `problem_responses_for` derives."""
    return {status: problem_response_spec(status) for status in statuses}


def problem_response_spec(status: int) -> dict[str, Any]:
    content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    if status in GATEWAY_STATUSES:
        content[JSON_CONTENT_TYPE] = {"schema": {"$ref": "#/components/schemas/GatewayError"}}
    response: dict[str, Any] = {"description": PROBLEM_STATUSES[status], "content": content}
    if status in (429, 503):
        response["headers"] = {"Retry-After": _RETRY_AFTER_HEADER}
    return response


def problem_responses_for(method: str, operation: dict[str, Any], *, authorized: bool) -> dict[str, dict[str, Any]]:
    """The problems any operation of this shape can answer (OpenAPI responses, keyed by status string).

    One rule set for the whole API, applied by the spec generator to every operation: it mirrors what
    `create_app`, `_precheck` and `handle` do before and around a route.
    """
    parameters = operation.get("parameters") or []
    where = {parameter["in"] for parameter in parameters}
    names = {parameter["name"].lower() for parameter in parameters}
    has_body = "requestBody" in operation or method.upper() in _BODY_METHODS
    statuses = {429, 500, 503}  # every route is throttled (429) and can fail (5xx)
    if authorized:
        statuses.add(401)
    if parameters or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413, 415}
    if "cursor" in names:
        statuses.add(400)
    if "path" in where:
        statuses.add(404)
        if authorized:
            statuses.add(403)
    if "if-match" in names:
        statuses.add(412)
    if "idempotency-key" in names:
        statuses.add(409)
    return {str(status): problem_response_spec(status) for status in sorted(statuses)}


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def problem_body(exc: errors.ApiError, event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("requestContext") or {}
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + exc.code,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        "instance": event.get("rawPath") or (context.get("http") or {}).get("path") or "/",
        "request_id": context.get("requestId"),
        "timestamp": timeutil.now_iso(),
    }
    if exc.errors is not None:
        body["errors"] = exc.errors
    body.update(exc.extra)
    return body


def problem_response(exc: errors.ApiError, event: dict[str, Any]) -> Response:
    count_error(exc)
    return Response(
        status_code=exc.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=dumps(problem_body(exc, event)),
        headers=exc.headers,
    )


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON_CONTENT_TYPE, body=dumps(data), headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        details.append(
            {"field": ".".join(location), "message": error.get("msg", "Invalid value"), "type": error.get("type")}
        )
    return details


def create_app() -> APIGatewayHttpResolver:
    """A resolver with request validation and every error rendered as the contract's problem+json."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(errors.ApiError)
    def _api_error(exc: errors.ApiError) -> Response:
        return problem_response(exc, app.current_event.raw_event)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response:
        details = _validation_errors(exc)
        if any(detail["type"] == "json_invalid" for detail in details):
            problem: errors.ApiError = errors.BadRequest("The body is not valid JSON")
        else:
            problem = errors.ValidationFailed(errors=details)
        return problem_response(problem, app.current_event.raw_event)

    @app.not_found
    def _no_route(_: Exception) -> Response:
        event = app.current_event
        if event.http_method == "OPTIONS":
            # A CORS preflight reaches us through the unauthenticated OPTIONS routes; API Gateway's CORS
            # configuration supplies the Access-Control-* headers of the answer.
            return Response(status_code=204)
        allowed = sorted(
            {route.method for route in app._static_routes + app._dynamic_routes if route.rule.match(event.path)}
        )
        if allowed:
            problem: errors.ApiError = errors.MethodNotAllowed(
                f"{event.http_method} is not allowed here; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        else:
            problem = errors.NotFound(f"No route for {event.http_method} {event.path}")
        return problem_response(problem, event.raw_event)

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Imported here: a function that calls no AWS service (docs) never loads boto3.
        from sessions_api.dal.clients import is_service_unavailable

        if is_service_unavailable(exc):
            logger.warning("Backing service unavailable", exc_info=exc)
            return problem_response(errors.ServiceUnavailable(retry_after=2), app.current_event.raw_event)
        logger.exception("Unhandled error")
        return problem_response(errors.ApiError(), app.current_event.raw_event)

    return app


def count_error(exc: errors.ApiError) -> None:
    """One metric per problem code, in the request's metric set (dimensioned by its route)."""
    metrics.add_metric(name=f"Error_{exc.code}", unit="Count", value=1)
    if exc.status >= 500:
        metrics.add_metric(name="ServerErrors", unit="Count", value=1)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]}... is out of range")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves duplicate names undefined (parsers keep the first or the last): refuse the ambiguity.
    data = dict(pairs)
    if len(data) != len(pairs):
        names = [name for name, _ in pairs]
        raise _DuplicateKey(next(name for name in names if names.count(name) > 1))
    return data


def _depth(data: Any) -> int:
    """How deeply objects and arrays nest in parsed JSON (walked without recursion)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep() -> errors.ApiError:
    return errors.validation_error("body", f"the body nests more than {MAX_BODY_DEPTH} levels deep")


def _check_json(text: str) -> None:
    """Refuse what json.loads would choke on later, or let through only to fail deeper (a 500)."""
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError as exc:
        raise _too_deep() from exc
    except _DuplicateKey as exc:
        raise errors.validation_error("body", f"the key {exc.name!r} appears more than once in one object") from exc
    except ValueError as exc:
        # Malformed JSON, NaN/Infinity, a float out of range, or an integer over Python's digit limit.
        raise errors.BadRequest(f"The body is not valid JSON: {str(exc)[:120]}") from exc
    if _depth(data) > MAX_BODY_DEPTH:
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise errors.validation_error("body", "text must be valid Unicode (no lone surrogates)")
    if not isinstance(data, dict):
        # Every body of this API is an object (`null` too is refused: send no body, or `{}`); Powertools would
        # let an array or a null through to an optional body.
        raise errors.validation_error("body", "the body must be a JSON object", "model_type")


def _precheck(event: dict[str, Any]) -> None:
    """What API Gateway passes through but the contract refuses before any route runs."""
    body = event.get("body")
    if not body:
        return
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge(f"The body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "").upper()
    if method not in _BODY_METHODS:
        return
    content_type = (event.get("headers") or {}).get("content-type", JSON_CONTENT_TYPE)
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE and not media_type.endswith("+json"):
        raise errors.UnsupportedMediaType(f"Content type {media_type!r} is not supported; send application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest("The body is not valid UTF-8") from exc
    if text.strip():
        _check_json(text)
    # Powertools reads the body as text: hand it the decoded form so validation sees plain JSON.
    event["body"], event["isBase64Encoded"] = text, False


def metric_route(event: dict[str, Any]) -> str:
    """`GET /api/v1/sessions/{session_id}`: the method called on the API Gateway route (bounded, no ids)."""
    route_key = str(event.get("routeKey") or "$default")
    if route_key == "$default":
        return route_key
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "").upper()
    return f"{method} {route_key.partition(' ')[2]}"


def handle(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_dimension(name="route", value=metric_route(event))
    metrics.add_metric(name="Requests", unit="Count", value=1)
    try:
        _precheck(event)
    except errors.ApiError as exc:
        count_error(exc)
        return {
            "statusCode": exc.status,
            "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **exc.headers},
            "body": dumps(problem_body(exc, event)),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def caller(app: APIGatewayHttpResolver) -> Caller:
    who = caller_from_event(app.current_event.raw_event)
    logger.append_keys(user_id=who.user_id)
    return who


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    return app.current_event.headers.get(name.lower())


def etag(version: int) -> str:
    return f'"{version}"'


# A version is a DynamoDB number we count up from 1: never more digits than this (and int() of more is slow).
_MAX_VERSION_DIGITS = 18


def _tags(value: str) -> list[str]:
    """The entity tags of an `If-Match`/`If-None-Match` list (RFC 9110), weak ones compared by their value."""
    return [tag.strip().removeprefix("W/").strip('"') for tag in value.split(",")]


def parse_if_match(value: str | None) -> int | None:
    """The version an `If-Match` value demands; None when absent or `*`."""
    if value is None or value.strip() == "*":
        return None
    tag = _tags(value)[0]
    if not (tag.isascii() and tag.isdigit() and len(tag) <= _MAX_VERSION_DIGITS):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise errors.PreconditionFailed(f"If-Match {shown!r} matches no version of this resource")
    return int(tag)


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """`If-None-Match` names the current `tag` (or is `*`): answer 304."""
    if if_none_match is None:
        return False
    current = tag.strip('"')
    return if_none_match.strip() == "*" or current in _tags(if_none_match)


def api_url(app: APIGatewayHttpResolver, base_path: str) -> str:
    """The API's public base URL as the client called it (`https://<domain>[/<stage>]<base_path>`)."""
    event = app.current_event.raw_event
    context = event.get("requestContext") or {}
    domain = context.get("domainName") or "localhost"
    # API Gateway always sends X-Forwarded-Proto; without it, a loopback host is the plain-HTTP local gateway.
    loopback = domain.split(":")[0] in ("localhost", "127.0.0.1")
    scheme = (event.get("headers") or {}).get("x-forwarded-proto") or ("http" if loopback else "https")
    stage = context.get("stage") or "$default"
    prefix = "" if stage == "$default" else f"/{stage}"
    return f"{scheme}://{domain}{prefix}{base_path}"
