"""How many DynamoDB requests each sessions endpoint makes: a regression here is a cost regression."""

from __future__ import annotations

import pytest

from tests.support import Api

BASE = "/api/v1/sessions"


@pytest.fixture
def seeded(api: Api) -> list[str]:
    return [api.create_session(prompt=f"hello {i}")["session_id"] for i in range(5)]


def test_create_is_one_transaction(api: Api, ddb_calls: list[str]) -> None:
    api("POST", BASE, body={"prompt": "hi"})
    assert ddb_calls == ["TransactWriteItems"]


def test_a_client_id_costs_one_read_and_one_transaction_whether_it_creates_or_finds(
    api: Api, ddb_calls: list[str]
) -> None:
    body = {"session_id": "0b6f4d4e-7c1a-4f0e-9a39-2d5c8e1f3a70", "prompt": "hi"}
    assert api("POST", BASE, body=body).status == 201
    assert api("POST", BASE, body=body).status == 200  # the refused write carries the session it found
    assert api("POST", BASE, body=body, user="bob").status == 409
    # The read: a deleted session's leftovers, not purged yet, must not become the new session's
    assert ddb_calls == ["Query", "TransactWriteItems"] * 3
    ddb_calls.clear()
    assert api("POST", BASE, body={"prompt": "hi"}).status == 201
    assert ddb_calls == ["TransactWriteItems"]  # our own random id: nothing to check


def test_create_with_idempotency_key_adds_the_record_writes(api: Api, ddb_calls: list[str]) -> None:
    # Powertools Idempotency: the in-progress record, the work, the completed record.
    api("POST", BASE, headers={"Idempotency-Key": "k"})
    assert ddb_calls == ["PutItem", "TransactWriteItems", "UpdateItem"]
    ddb_calls.clear()
    api("POST", BASE, headers={"Idempotency-Key": "k"})  # a replay reads the stored response
    assert "TransactWriteItems" not in ddb_calls


def test_reads_are_one_request(api: Api, seeded: list[str], ddb_calls: list[str]) -> None:
    api("GET", BASE, query={"limit": "2"})
    assert ddb_calls == ["Query"], "first page and its total/summary in one query"
    ddb_calls.clear()
    api("GET", f"{BASE}/continue")
    assert ddb_calls == ["Query", "GetItem"], "the session, and the counters that say whether it was erased"
    ddb_calls.clear()
    api("GET", f"{BASE}/{seeded[0]}")
    assert ddb_calls == ["BatchGetItem"], "the session and the caller's shares in one request"


def test_later_pages_and_embedded_messages_take_two(api: Api, seeded: list[str], ddb_calls: list[str]) -> None:
    cursor = api("GET", BASE, query={"limit": "2"}).body["next_cursor"]
    ddb_calls.clear()
    api("GET", BASE, query={"limit": "2", "cursor": cursor})
    assert sorted(ddb_calls) == ["GetItem", "Query"], "the page and the counters item it no longer meets"
    ddb_calls.clear()
    api("GET", f"{BASE}/{seeded[0]}", query={"include": "messages"})
    assert ddb_calls == ["BatchGetItem", "Query"]


def test_writes(api: Api, seeded: list[str], ddb_calls: list[str]) -> None:
    api("PATCH", f"{BASE}/{seeded[0]}", body={"title": "x"})
    assert ddb_calls == ["TransactWriteItems", "BatchGetItem"], "a transaction returns no item: one read back"
    ddb_calls.clear()
    api("DELETE", f"{BASE}/{seeded[0]}")
    assert ddb_calls == ["TransactWriteItems"]
    ddb_calls.clear()
    api("POST", f"{BASE}/cleanup", body={"session_ids": seeded[1:]})
    assert ddb_calls == ["BatchGetItem", "TransactWriteItems"]


def test_no_request_path_ever_scans(api: Api, seeded: list[str], ddb_calls: list[str]) -> None:
    api("GET", BASE, query={"search": "x", "status": "active"})
    api("GET", f"{BASE}/{seeded[0]}")
    api("POST", f"{BASE}/cleanup", body={"session_ids": seeded})
    assert "Scan" not in ddb_calls
