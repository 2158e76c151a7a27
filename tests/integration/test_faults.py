"""Faults on the write paths: AWS throttles, fails or cancels; the client gets a retryable 503 (or the retry
succeeds), and the table's invariants hold whatever happened.

Faults are injected at the HTTP layer of botocore (`before-send`, see tests/faults.py), so its standard retry
mode really retries.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

from tests.conftest import all_items
from tests.faults import Faults, bedrock_error, dynamodb_error, s3_error
from tests.support import Api

BASE = "/api/v1/sessions"
DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#{}"


def snapshot(table: Any) -> list[dict[str, Any]]:
    return sorted(all_items(table), key=lambda item: (item["PK"], item["SK"]))


def assert_invariants(table: Any) -> None:
    """What must hold after any failure: counts match, nothing orphaned, every export has its file."""
    items = all_items(table)
    partitions: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item["PK"].startswith("SESSION#"):
            partitions.setdefault(item["PK"], []).append(item)
    s3 = boto3.client("s3")
    bucket = os.environ["BUCKET_NAME"]
    for pk, members in partitions.items():
        heads = [item for item in members if item["SK"] == "#SESSION"]
        assert heads, f"orphan items in {pk}: {[item['SK'] for item in members]}"
        session = heads[0]
        if session.get("deleted_at"):
            continue
        messages = [item for item in members if item["SK"].startswith("MSG#")]
        assert int(session.get("message_count", 0)) == len(messages), pk
        assert session["status"] != "expired" or "GSI2PK" not in session, f"half-expired {pk}"
        for export in (item for item in members if item["SK"].startswith("EXPORT#")):
            s3.head_object(Bucket=bucket, Key=export["s3_key"])  # raises when the file is missing
    counters = [item for item in items if item["SK"] == "COUNTERS"]
    for counter in counters:
        owner = counter["PK"].removeprefix("USER#")
        open_sessions = [
            item
            for item in items
            if item["SK"] == "#SESSION" and item.get("created_by") == owner and not item.get("deleted_at")
        ]
        total = int(counter.get("total", len(open_sessions)))
        assert total == len(open_sessions), f"counters of {owner} say {total}, table has {len(open_sessions)}"


THROTTLES = [
    pytest.param(lambda: dynamodb_error("ThrottlingException"), id="throttling"),
    pytest.param(lambda: dynamodb_error("ProvisionedThroughputExceededException"), id="throughput-exceeded"),
    pytest.param(lambda: dynamodb_error("InternalServerError", 500), id="dynamodb-500"),
    pytest.param(
        lambda: dynamodb_error(
            "TransactionCanceledException",
            CancellationReasons=[{"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}],
        ),
        id="transaction-conflict",
    ),
]


def assert_unavailable(result: Any) -> None:
    assert result.status == 503, result.body
    assert result.problem["code"] == "service_unavailable"
    assert int(result.headers["Retry-After"]) > 0


@pytest.mark.parametrize("error", THROTTLES)
def test_create_that_keeps_failing_is_a_503_and_stores_nothing(
    api: Api, table: Any, faults: Faults, error: Any
) -> None:
    # Given a caller with a session, and DynamoDB failing every write transaction
    api.create_session(prompt="first")
    before = snapshot(table)
    faults.fail("TransactWriteItems", error)
    # When they create another
    result = api("POST", BASE, body={"prompt": "second"})
    # Then botocore retried (standard mode, 3 attempts), or our transact a conflicting transaction (4), and the
    # client gets 503
    assert faults.attempts["TransactWriteItems"] == (4 if "Canceled" in str(error().content) else 3)
    assert_unavailable(result)
    assert snapshot(table) == before
    assert_invariants(table)


def test_a_transaction_conflict_that_clears_on_retry_is_invisible(api: Api, table: Any, faults: Faults) -> None:
    # Given another transaction holding the rate counter all of a user's writes share, for two attempts
    session_id = api.create_session(prompt="first")["session_id"]
    conflict = THROTTLES[3].values[0]
    faults.fail("TransactWriteItems", conflict, times=2)
    # When the user appends, then the write is retried and lands once; the client never knows
    result = api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "second"})
    assert faults.attempts["TransactWriteItems"] == 3
    assert result.status == 201, result.body
    stored = [item["content"] for item in all_items(table) if item["SK"].startswith("MSG#")]
    assert sorted(stored) == ["first", "second"]
    assert_invariants(table)


def test_a_throttle_that_clears_on_retry_is_invisible(api: Api, table: Any, faults: Faults) -> None:
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"), times=2)
    result = api("POST", BASE, body={"prompt": "hello"})
    assert faults.attempts["TransactWriteItems"] == 3
    assert result.status == 201
    sessions = [item for item in all_items(table) if item["SK"] == "#SESSION"]
    assert len(sessions) == 1
    assert_invariants(table)


@pytest.mark.parametrize(
    ("method", "suffix", "body", "operations"),
    [
        ("PATCH", "", {"title": "renamed"}, ("UpdateItem", "TransactWriteItems")),
        ("DELETE", "", None, ("TransactWriteItems", "UpdateItem")),
        ("POST", "/pause", {"reason": "lunch"}, ("TransactWriteItems", "UpdateItem")),
        ("POST", "/messages", {"role": "user", "content": "hi"}, ("TransactWriteItems",)),
        ("PUT", "/slides", {"slides": [{"slide_id": "slide-1", "html": "<h1>x</h1>"}]}, ("TransactWriteItems",)),
        ("POST", "/comments", {"content": "note", "comment_type": "note"}, ("TransactWriteItems",)),
    ],
    ids=["rename", "delete", "pause", "append-message", "replace-deck", "comment"],
)
def test_session_writes_under_throttling_are_503_and_change_nothing(
    api: Api, table: Any, faults: Faults, method: str, suffix: str, body: Any, operations: tuple[str, ...]
) -> None:
    # Given a session with a message
    session = api.create_session(prompt="hello")
    before = snapshot(table)
    for operation in operations:
        faults.fail(operation, lambda: dynamodb_error("ThrottlingException"))
    # When a write to it meets a throttled DynamoDB
    result = api(method, f"{BASE}/{session['session_id']}{suffix}", body=body)
    # Then it retried, answers 503 with Retry-After, and nothing changed
    assert sum(faults.attempts.values()) >= 3
    assert_unavailable(result)
    assert snapshot(table) == before
    assert_invariants(table)
    # And once DynamoDB recovers, the same request succeeds
    faults.heal()
    assert api(method, f"{BASE}/{session['session_id']}{suffix}", body=body).status < 300
    assert_invariants(table)


def test_cleanup_under_throttling_is_503_and_deletes_nothing(api: Api, table: Any, faults: Faults) -> None:
    ids = [api.create_session()["session_id"] for _ in range(3)]
    before = snapshot(table)
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"))
    faults.fail("BatchGetItem", lambda: dynamodb_error("ThrottlingException"))
    result = api("POST", f"{BASE}/cleanup", body={"session_ids": ids})
    assert_unavailable(result)
    assert snapshot(table) == before


def test_reads_under_throttling_are_503(api: Api, faults: Faults) -> None:
    session = api.create_session()
    faults.fail("Query", lambda: dynamodb_error("ThrottlingException"))
    faults.fail("BatchGetItem", lambda: dynamodb_error("ThrottlingException"))
    assert_unavailable(api("GET", BASE))
    assert_unavailable(api("GET", f"{BASE}/{session['session_id']}"))


def test_s3_failing_mid_export_leaves_no_record_without_its_file(api: Api, table: Any, faults: Faults) -> None:
    # Given a session with content, and S3 failing every upload
    session = api.create_session(prompt="export me")
    before = snapshot(table)
    faults.fail("PutObject", lambda: s3_error("InternalError"))
    # When it is exported
    result = api("POST", f"{BASE}/{session['session_id']}/export", body={"format": "markdown"})
    # Then S3 was retried, the client gets 503, and no export record points at a missing file
    assert faults.attempts["PutObject"] == 3
    assert_unavailable(result)
    assert snapshot(table) == before
    assert_invariants(table)
    # And after S3 recovers, the export works and its record has its file
    faults.heal()
    assert api("POST", f"{BASE}/{session['session_id']}/export", body={"format": "markdown"}).status == 201
    assert_invariants(table)


def test_export_record_write_failing_after_upload_leaves_no_record(api: Api, table: Any, faults: Faults) -> None:
    session = api.create_session(prompt="export me")
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"))
    result = api("POST", f"{BASE}/{session['session_id']}/export", body={"format": "markdown"})
    assert_unavailable(result)
    assert not [item for item in all_items(table) if item["SK"].startswith("EXPORT#")]
    assert_invariants(table)


def test_replaying_an_idempotency_key_ten_times_creates_one_session(api: Api, table: Any) -> None:
    # Given a create with an Idempotency-Key, sent ten times (a client retrying through a flaky network)
    answers = [api("POST", BASE, body={"title": "once"}, headers={"Idempotency-Key": "retry-me"}) for _ in range(10)]
    # Then every answer is the first one, and there is one session
    assert {answer.status for answer in answers} == {201}
    assert len({answer.body["session_id"] for answer in answers}) == 1
    sessions = [item for item in all_items(table) if item["SK"] == "#SESSION"]
    assert len(sessions) == 1
    assert_invariants(table)


def test_replaying_an_idempotency_key_after_a_throttled_attempt_creates_one_session(
    api: Api, table: Any, faults: Faults
) -> None:
    faults.fail("TransactWriteItems", lambda: dynamodb_error("ThrottlingException"))
    first = api("POST", BASE, body={"title": "once"}, headers={"Idempotency-Key": "flaky"})
    assert_unavailable(first)
    faults.heal()
    answers = [api("POST", BASE, body={"title": "once"}, headers={"Idempotency-Key": "flaky"}) for _ in range(10)]
    assert {answer.status for answer in answers} == {201}
    assert len({answer.body["session_id"] for answer in answers}) == 1
    assert len([item for item in all_items(table) if item["SK"] == "#SESSION"]) == 1
    assert_invariants(table)


@pytest.mark.parametrize(
    ("code", "status", "answer"),
    [("ThrottlingException", 429, 503), ("ServiceUnavailableException", 503, 503), ("ValidationException", 400, 502)],
)
def test_bedrock_failing_stores_the_turn_and_an_error_reply(
    api: Api, table: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch, code: str, status: int, answer: int
) -> None:
    from sessions_api.dal.bedrock import BedrockConverseProvider
    from tests.support import load_function

    # Given a session, and Bedrock (the deployed provider) failing every ConverseStream call of the worker
    monkeypatch.setattr(load_function("ChatWorkerFunction"), "provider", BedrockConverseProvider)
    faults.fail("ConverseStream", lambda: bedrock_error(code, status))
    session = api.create_session(prompt="hello")
    # When the user chats
    result = api("POST", f"{BASE}/{session['session_id']}/chat", body={"message": "are you there?"})
    # Then the client learns whether to retry, and the user's message and an is_error reply are stored
    assert faults.attempts["ConverseStream"] >= 1
    assert result.status == answer, result.body
    assert result.problem["code"] == ("service_unavailable" if answer == 503 else "model_error")
    stored = [item for item in all_items(table) if item["SK"].startswith("MSG#")]
    assert [item["role"] for item in sorted(stored, key=lambda item: item["SK"])] == ["user", "user", "assistant"]
    assert sorted(stored, key=lambda item: item["SK"])[-1]["is_error"] is True
    assert_invariants(table)
    # And the session is not left locked: once Bedrock is back (here: the local provider), chat works
    faults.heal()
    monkeypatch.undo()
    again = api("POST", f"{BASE}/{session['session_id']}/chat", body={"message": "again"})
    assert again.status == 200, again.body
    assert_invariants(table)
