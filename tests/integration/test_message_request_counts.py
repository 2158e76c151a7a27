"""How many DynamoDB requests each messages and chat endpoint makes: a regression here is a cost regression."""

from __future__ import annotations

import pytest

from tests.support import Api

BASE = "/api/v1/sessions"


@pytest.fixture
def session_id(api: Api) -> str:
    sid = api.create_session()["session_id"]
    body = {"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(20)]}
    assert api("POST", f"{BASE}/{sid}/messages", body=body).status == 201
    return sid


def test_appends_are_one_transaction(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "one"})
    assert ddb_calls == ["TransactWriteItems"]
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/messages", body={"messages": [{"role": "user", "content": "x"}] * 25})
    assert ddb_calls == ["TransactWriteItems"], "25 messages, the session and the history event: one transaction"


def test_an_append_with_idempotency_key_adds_the_record_writes(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    headers = {"Idempotency-Key": "append-k"}
    api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "one"}, headers=headers)
    assert ddb_calls == ["PutItem", "TransactWriteItems", "UpdateItem"]
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "one"}, headers=headers)
    assert "TransactWriteItems" not in ddb_calls, "a replay reads the stored response"


def test_a_large_append_first_learns_the_owners_prefix(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "x" * 70_000})
    assert ddb_calls == ["BatchGetItem", "TransactWriteItems"], "the S3 object is written between the two"


def test_reads(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    page = api("GET", f"{BASE}/{session_id}/messages", query={"limit": "5"}).body
    assert ddb_calls == ["BatchGetItem", "Query"], "the access check, then the page"
    ddb_calls.clear()
    api("GET", f"{BASE}/{session_id}/messages", query={"limit": "5", "cursor": page["next_cursor"]})
    assert ddb_calls == ["BatchGetItem", "Query"]
    ddb_calls.clear()
    api("GET", f"{BASE}/{session_id}/messages/{page['messages'][0]['message_id']}")
    assert ddb_calls == ["BatchGetItem"], "the session, the caller's shares and the message together"
    ddb_calls.clear()
    api("GET", f"{BASE}/{session_id}", query={"include": "messages"})
    assert ddb_calls == ["BatchGetItem", "Query"]


def test_deletes(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    messages = api("GET", f"{BASE}/{session_id}/messages").body["messages"]
    ddb_calls.clear()
    api("DELETE", f"{BASE}/{session_id}/messages/{messages[3]['message_id']}")
    assert ddb_calls == ["BatchGetItem", "TransactWriteItems"]
    ddb_calls.clear()
    api("DELETE", f"{BASE}/{session_id}/messages/{messages[-1]['message_id']}")
    assert ddb_calls == ["BatchGetItem", "Query", "TransactWriteItems"], "the newest: one Query for the next preview"


def test_chats(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    accepted = api("POST", f"{BASE}/{session_id}/chat/async", body={"message": "hi"})
    assert accepted.status == 202
    assert ddb_calls == ["BatchGetItem", "TransactWriteItems"], (
        "access, budget and the turn; then the user message, the run and the turn in one transaction"
    )
    ddb_calls.clear()
    assert api("GET", f"/api/v1/chat/poll/{accepted.body['request_id']}", query={"wait": "10"}).status == 200
    assert ddb_calls[0] == "BatchGetItem", "access and the run in one request"
    assert set(ddb_calls[1:]) <= {"GetItem", "Query"}, "a long poll re-reads the run, then its events"
    ddb_calls.clear()
    # A synchronous chat is the same acceptance, then reads of its run until it has ended
    assert api("POST", f"{BASE}/{session_id}/chat", body={"message": "hi", "if_busy": "enqueue"}).status == 200
    assert ddb_calls[:2] == ["BatchGetItem", "TransactWriteItems"] and set(ddb_calls[2:]) == {"GetItem"}
    ddb_calls.clear()
    assert api("POST", "/api/v1/chat", body={"message": "hi"}).status == 200
    assert ddb_calls[:2] == ["TransactWriteItems", "TransactWriteItems"], "the temporary session, then the run"
    assert set(ddb_calls[2:]) == {"GetItem"}


def test_no_messages_path_ever_scans(api: Api, session_id: str, ddb_calls: list[str]) -> None:
    api("GET", f"{BASE}/{session_id}/messages", query={"order": "desc"})
    api("POST", f"{BASE}/{session_id}/chat", body={"message": "hi"})
    assert "Scan" not in ddb_calls
