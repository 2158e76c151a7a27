"""HTTP edge shared by every function: the resolver, RFC 9457 problems, pre-checks and ETags.

Domain errors become HTTP responses here and nowhere else.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from sessions_api import errors, timeutil
from sessions_api.dal.clients import is_service_unavailable
from sessions_api.identity import Caller, caller_from_event
from sessions_api.observability import logger, metrics

PROBLEM_TYPE_BASE = "https://errors.sessions-api.dev/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 1024 * 1024
_BODY_METHODS = {"POST", "PUT", "PATCH"}


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
    metrics.add_metric(name=f"Error_{exc.code}", unit="Count", value=1)
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
        if is_service_unavailable(exc):
            logger.warning("Backing service unavailable", exc_info=exc)
            return problem_response(errors.ServiceUnavailable(retry_after=2), app.current_event.raw_event)
        logger.exception("Unhandled error")
        return problem_response(errors.ApiError(), app.current_event.raw_event)

    return app


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
    # Powertools reads the body as text: hand it the decoded form so validation sees plain JSON.
    event["body"], event["isBase64Encoded"] = text, False


def handle(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        _precheck(event)
    except errors.ApiError as exc:
        metrics.add_metric(name=f"Error_{exc.code}", unit="Count", value=1)
        return {
            "statusCode": exc.status,
            "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **exc.headers},
            "body": dumps(problem_body(exc, event)),
            "isBase64Encoded": False,
        }
    route = event.get("routeKey", "$default")
    metrics.add_metric(name="Requests", unit="Count", value=1)
    metrics.add_metadata(key="route", value=route)
    return app.resolve(event, context)


def caller(app: APIGatewayHttpResolver) -> Caller:
    who = caller_from_event(app.current_event.raw_event)
    logger.append_keys(user_id=who.user_id)
    return who


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    return app.current_event.headers.get(name.lower())


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(app: APIGatewayHttpResolver) -> int | None:
    """The version an `If-Match` header demands; None when absent or `*`."""
    value = header(app, "If-Match")
    if value is None or value.strip() == "*":
        return None
    tag = value.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise errors.PreconditionFailed(f"If-Match {value!r} matches no version of this resource")
    return int(tag)
