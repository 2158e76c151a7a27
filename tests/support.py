"""Test support: the stack from template.yaml, API Gateway v2 events, in-process invocation."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from local import iam, template

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


@cache
def stack() -> template.Stack:
    return template.load_stack(ROOT / "template.yaml", overrides={})


@cache
def function_specs() -> dict[str, template.FunctionSpec]:
    return {spec.logical_id: spec for spec in template.functions(stack())}


def function_environment() -> dict[str, str]:
    """Every function's environment from the template (they share the Globals part)."""
    merged: dict[str, str] = {}
    for spec in function_specs().values():
        merged.update(spec.environment)
    return merged


_ROLE = threading.local()  # the statements of the role the code on this thread runs with (None: a test's own)


@cache
def role_statements(logical_id: str) -> list[iam.Statement]:
    return iam.parse(function_specs()[logical_id].policy_statements)


def current_role() -> list[iam.Statement] | None:
    return getattr(_ROLE, "statements", None)


@contextlib.contextmanager
def _role(statements: list[iam.Statement] | None) -> Iterator[None]:
    previous = current_role()
    _ROLE.statements = statements
    try:
        yield
    finally:
        _ROLE.statements = previous


def as_function(logical_id: str) -> contextlib.AbstractContextManager[None]:
    """Run as `logical_id`'s role: its S3 and DynamoDB calls are refused past what template.yaml grants it."""
    return _role(role_statements(logical_id))


def as_the_test() -> contextlib.AbstractContextManager[None]:
    """The test's own calls, made from a hook the function under test calls back: no role."""
    return _role(None)


def _submitted_in_role(submit: Callable[..., Any]) -> Callable[..., Any]:
    """A function's own threads (parallel S3 reads, batches at once) run with its role, as in Lambda."""

    def in_role(pool: ThreadPoolExecutor, work: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        statements = current_role()
        if statements is None:
            return submit(pool, work, *args, **kwargs)

        def run(*inner: Any, **named: Any) -> Any:
            with _role(statements):
                return work(*inner, **named)

        return submit(pool, run, *args, **kwargs)

    return in_role


iam.enforce(current_role, region=template.REGION, account=template.ACCOUNT_ID)
ThreadPoolExecutor.submit = _submitted_in_role(ThreadPoolExecutor.submit)  # type: ignore[method-assign]

# What each worker's handler hands its event to: a test that calls it directly runs it with that role too.
_ENTRY_POINTS = (
    ("sessions_api.logic.expiry", "Expiry", "run", "ExpiryFunction"),
    ("sessions_api.logic.takeout", "Takeout", "run", "TakeoutWorkerFunction"),
    ("sessions_api.logic.erasing", "Eraser", "run", "ErasureWorkerFunction"),
    ("sessions_api.logic.runner", None, "run", "ChatWorkerFunction"),
    ("sessions_api.logic.runner", None, "recover", "ChatWorkerFunction"),
)


def entry_points_in_their_roles() -> None:
    for module_name, class_name, attribute, logical_id in _ENTRY_POINTS:
        owner: Any = importlib.import_module(module_name)
        if class_name is not None:
            owner = getattr(owner, class_name)
        original = getattr(owner, attribute)
        if getattr(original, "_in_role", False):
            continue

        def in_role(*args: Any, _work: Callable[..., Any] = original, _id: str = logical_id, **kwargs: Any) -> Any:
            if current_role() is not None:  # called by a function already (the schedule recovering a run)
                return _work(*args, **kwargs)
            with as_function(_id):
                return _work(*args, **kwargs)

        in_role._in_role = True  # type: ignore[attr-defined]
        setattr(owner, attribute, in_role)


@cache
def load_function(logical_id: str) -> ModuleType:
    """A function's handler module, loaded from its CodeUri the way Lambda would (its own name), its handler
    run with the function's role."""
    spec = function_specs()[logical_id]
    module_name = f"fn_{logical_id}"
    if str(spec.code_dir) not in sys.path:  # Lambda puts the code directory on sys.path (its own packages)
        sys.path.append(str(spec.code_dir))
    path = spec.code_dir / (spec.handler.split(".")[0] + ".py")
    loader = importlib.util.spec_from_file_location(module_name, path)
    assert loader and loader.loader
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    loader.loader.exec_module(module)
    handler_name = spec.handler.split(".")[-1]
    handler = getattr(module, handler_name)

    def in_role(event: Any, context: Any) -> Any:
        with as_function(logical_id):
            return handler(event, context)

    setattr(module, handler_name, in_role)
    return module


def _route_pattern(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", path)
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def route_for(method: str, path: str) -> tuple[str, template.RouteSpec, dict[str, str]]:
    """The function and route API Gateway would pick: static segments beat parameters."""
    candidates = []
    for logical_id, spec in function_specs().items():
        for route in spec.routes:
            if route.path == "$default" or route.method not in ("ANY", method):
                continue
            match = _route_pattern(route.path).match(path)
            if match:
                specificity = (route.path.count("{") == 0, -route.path.count("{"), route.method != "ANY")
                candidates.append((specificity, logical_id, route, match.groupdict()))
    if not candidates:
        default = [
            (logical_id, route)
            for logical_id, spec in function_specs().items()
            for route in spec.routes
            if route.path == "$default"
        ]
        if default:
            return default[0][0], default[0][1], {}
        raise LookupError(f"no route for {method} {path}")
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    _, logical_id, route, params = candidates[0]
    return logical_id, route, params


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    user: str | None = "alice",
    email: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(function logical id, the API Gateway HTTP API v2 event for this request)."""
    logical_id, route, params = route_for(method, path)
    event = base_event()
    all_headers = {"content-type": "application/json", "user-agent": "pytest", **(headers or {})}
    event.update(
        routeKey=route.key,
        rawPath=path,
        rawQueryString=urlencode(query or {}),
        headers={name.lower(): value for name, value in all_headers.items()},
        isBase64Encoded=False,
    )
    for optional in ("queryStringParameters", "pathParameters", "body", "cookies"):
        event.pop(optional, None)
    if query:
        event["queryStringParameters"] = dict(query)
    if params:
        event["pathParameters"] = params
    if body is not None:
        if isinstance(body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
    context = event["requestContext"]
    context.update(routeKey=route.key, requestId=str(uuid.uuid4()))
    context["http"].update(method=method, path=path)
    if user is None or route.authorizer is None:
        context.pop("authorizer", None)
    else:
        claims = {"sub": user, **({"email": email, "email_verified": "true"} if email else {})}
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return logical_id, event


def base_event() -> dict[str, Any]:
    """The fixed parts of an API Gateway HTTP API payload v2.0 event."""
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api1234567",
            "http": {
                "method": "GET",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"
    function_version: str = "$LATEST"
    timeout_seconds: float | None = None  # None: always 10 s left
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        if self.timeout_seconds is None:
            return 10_000
        return int((self.started + self.timeout_seconds - time.monotonic()) * 1000)


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers.get("Content-Type") == "application/problem+json", self.raw
        return self.body


class Api:
    """Calls the API in-process: the route API Gateway would pick, the event it would send."""

    def __call__(self, method: str, path: str, **kwargs: Any) -> Result:
        logical_id, event = http_event(method, path, **kwargs)
        return self.invoke(logical_id, event)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Result:
        module = load_function(logical_id)
        context = LambdaContext(function_name=logical_id)
        if threading.current_thread() is threading.main_thread():
            raw = module.lambda_handler(event, context)
        else:
            # Lambda never runs two invocations in one process, and Powertools' logger and metrics singletons
            # are not made for it: tests racing requests on threads skip the instrumentation wrapper.
            from sessions_api import http

            with as_function(logical_id):
                raw = http.handle(module.app, event, context)
        text = raw.get("body") or ""
        if raw.get("isBase64Encoded"):
            body: Any = base64.b64decode(text)
        else:
            content_type = (raw.get("headers") or {}).get("Content-Type", "")
            body = json.loads(text) if text and "json" in content_type else text
        return Result(raw["statusCode"], raw.get("headers") or {}, body, raw)

    def create_session(self, user: str = "alice", **body: Any) -> dict[str, Any]:
        result = self("POST", "/api/v1/sessions", body=body, user=user)
        assert result.status == 201, result.body
        return result.body


def start_chat_worker() -> Any:
    """The chat worker fed by the table's stream, as its event-source mapping in template.yaml says, on a
    thread of its own (inside the test's moto account)."""
    import boto3

    from local import streams

    resource = stack().template["Resources"]["ChatWorkerFunction"]
    ((table_id, properties),) = streams.stream_events(resource)
    table_name = stack().physical_name(table_id)
    stream_arn = boto3.client("dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    worker = load_function("ChatWorkerFunction")
    timeout = float(stack().resolve(resource["Properties"]["Timeout"]))

    def invoke(event: dict[str, Any]) -> None:
        # The unwrapped handler: Powertools' logger and metrics singletons are the test thread's.
        with as_function("ChatWorkerFunction"):
            worker.handler(event, LambdaContext(function_name="ChatWorkerFunction", timeout_seconds=timeout))

    mapping = streams.source_mapping(stream_arn, properties)
    poller = streams.StreamPoller(boto3.client("dynamodbstreams"), mapping, invoke).start()
    _CHAT_WORKERS.append(poller)
    return poller


_CHAT_WORKERS: list[Any] = []


def stop_chat_workers() -> None:
    while _CHAT_WORKERS:
        _CHAT_WORKERS.pop().stop()
