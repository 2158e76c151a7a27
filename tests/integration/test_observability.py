"""Logs and metrics as an operator reads them: JSON lines with the request id and the caller, never content
or tokens; EMF metrics per route and per problem code."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sessions_api.observability import logger
from tests.faults import Faults, dynamodb_error
from tests.support import Api, http_event

BASE = "/api/v1/sessions"
SECRET_CONTENT = "my-card-4111111111111111-and-password-hunter2"
SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXNpZ25hdHVyZQ"


def lines(text: str) -> list[dict[str, Any]]:
    parsed = []
    for line in text.splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the functions' logger writes (its handler keeps the stream it was created with)."""
    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def debug_logs() -> Iterator[None]:
    # The most talkative level: even then nothing secret may be written.
    level = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(level)


def test_no_log_line_carries_message_content_or_tokens(
    api: Api, faults: Faults, capfd: pytest.CaptureFixture[str], log_output: io.StringIO, debug_logs: None
) -> None:
    # Given requests carrying secret-looking content and a bearer token: a success, a validation error,
    # a not-found, a throttled write (which logs a traceback) and a chat
    headers = {"Authorization": f"Bearer {SECRET_TOKEN}", "Idempotency-Key": "k1"}
    session = api("POST", BASE, body={"title": "t", "prompt": SECRET_CONTENT}, headers=headers).body
    path = f"{BASE}/{session['session_id']}"
    api("POST", f"{path}/messages", body={"role": "user", "content": SECRET_CONTENT}, headers=headers)
    api("POST", f"{path}/messages", body={"role": "nobody", "content": SECRET_CONTENT}, headers=headers)
    api("POST", f"{path}/chat", body={"message": SECRET_CONTENT}, headers=headers)
    api("GET", f"{BASE}/session_0123456789abcdef", headers=headers)
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"))
    api("POST", f"{path}/messages", body={"role": "user", "content": SECRET_CONTENT}, headers=headers)
    api("PATCH", path, body={"title": SECRET_CONTENT[:40]}, headers=headers)
    # Then the output holds neither
    output = capfd.readouterr()
    everything = output.out + output.err + log_output.getvalue()
    assert "Backing service unavailable" in everything  # the throttled write did log
    assert SECRET_CONTENT[:40] not in everything
    assert SECRET_TOKEN not in everything and "hunter2" not in everything


def test_every_log_line_names_the_request_and_the_caller(api: Api, faults: Faults, log_output: io.StringIO) -> None:
    # Given a request that logs (a throttled write)
    session = api.create_session()
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"))
    logical_id, event = http_event("PATCH", f"{BASE}/{session['session_id']}", body={"title": "x"}, user="alice")
    api.invoke(logical_id, event)
    # Then each of its log lines carries API Gateway's request id (Powertools' correlation id) and the caller
    logged = [line for line in lines(log_output.getvalue()) if "level" in line]
    assert logged
    for line in logged:
        assert line["correlation_id"] == event["requestContext"]["requestId"]
        assert line["user_id"] == "alice"
        assert line["service"] == "sessions-api"


def test_metrics_are_emf_per_route_and_per_problem_code(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    # Given a session, when it is read and a missing one is read
    session = api.create_session()
    capfd.readouterr()
    api("GET", f"{BASE}/{session['session_id']}")
    api("GET", f"{BASE}/session_0123456789abcdef")
    api("POST", BASE, body="{not json")
    # Then each request emits one EMF document in the SessionsApi namespace, dimensioned by route
    documents = [line for line in lines(capfd.readouterr().out) if "_aws" in line]
    assert len(documents) == 3
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "SessionsApi"
        assert directive["Dimensions"] == [["route", "service"]]
        assert document["Requests"] == [1.0]
    found, missing, malformed = documents
    assert found["route"] == missing["route"] == "GET /api/v1/sessions/{session_id}"
    assert "Error_session_not_found" not in found
    assert missing["Error_session_not_found"] == [1.0]
    assert malformed["route"] == "POST /api/v1/sessions" and malformed["Error_bad_request"] == [1.0]


def test_unknown_paths_share_one_metric_route(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    # Paths are unbounded: the `$default` route must not become a dimension value per path
    api("GET", "/api/v1/whatever/123", user=None)
    (document,) = [line for line in lines(capfd.readouterr().out) if "_aws" in line]
    assert document["route"] == "$default"
