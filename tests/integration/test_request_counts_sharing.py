"""How many DynamoDB requests each sharing and comments endpoint makes: a regression is a cost regression."""

from __future__ import annotations

import pytest

from tests.support import Api

BASE = "/api/v1/sessions"


@pytest.fixture
def shared(api: Api) -> tuple[str, str]:
    session_id = api.create_session(prompt="hi")["session_id"]
    result = api(
        "POST",
        f"{BASE}/{session_id}/share",
        body={"recipients": ["bob", "bob@example.com"], "permissions": "collaborate"},
    )
    return session_id, result.body["share_id"]


def test_share_and_comment_are_one_transaction_for_the_owner(api: Api, ddb_calls: list[str]) -> None:
    session_id = api.create_session()["session_id"]
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/share", body={"recipients": [f"u{i}" for i in range(50)], "permissions": "view"})
    assert ddb_calls == ["TransactWriteItems"], "50 recipients, the event and the touch in one transaction"
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/comments", body={"content": "x", "comment_type": "note"})
    assert ddb_calls == ["TransactWriteItems"]


def test_a_collaborators_comment_re_checks_the_share_in_the_transaction(
    api: Api, shared: tuple[str, str], ddb_calls: list[str]
) -> None:
    session_id, _ = shared
    ddb_calls.clear()
    result = api("POST", f"{BASE}/{session_id}/comments", body={"content": "x", "comment_type": "note"}, user="bob")
    assert result.status == 201
    # the owner-conditioned attempt, the policy's read, the write with the share's ConditionCheck
    assert ddb_calls == ["TransactWriteItems", "BatchGetItem", "GetItem", "TransactWriteItems"]


def test_a_refused_share_costs_the_attempt_and_one_read(
    api: Api, shared: tuple[str, str], ddb_calls: list[str]
) -> None:
    session_id, _ = shared
    ddb_calls.clear()
    body = {"recipients": ["eve"], "permissions": "view"}
    assert api("POST", f"{BASE}/{session_id}/share", body=body, user="bob").status == 403
    assert ddb_calls == ["TransactWriteItems", "BatchGetItem", "GetItem"], "and the owner's counters (an erasure?)"


def test_lists_and_revoke(api: Api, shared: tuple[str, str], ddb_calls: list[str]) -> None:
    session_id, share_id = shared
    ddb_calls.clear()
    api("GET", f"{BASE}/{session_id}/shares")
    assert ddb_calls == ["BatchGetItem", "Query"], "the policy's read, one page of the partition"
    ddb_calls.clear()
    api("GET", f"{BASE}/{session_id}/comments", user="bob")
    assert ddb_calls == ["BatchGetItem", "GetItem", "Query"], "a sharee's read also reads the owner's counters"
    ddb_calls.clear()
    assert api("DELETE", f"{BASE}/{session_id}/shares/{share_id}").status == 204
    assert ddb_calls == ["BatchGetItem", "Query", "TransactWriteItems"], "read, find the share's items, delete them"


def test_shared_with_me_is_one_query_per_identity_and_one_read(
    api: Api, shared: tuple[str, str], ddb_calls: list[str]
) -> None:
    ddb_calls.clear()
    assert api("GET", BASE, query={"shared": "true"}, user="bob").body["count"] == 1
    assert ddb_calls == ["Query", "BatchGetItem"]
    ddb_calls.clear()
    assert api("GET", BASE, query={"shared": "true"}, user="bob", email="bob@example.com").body["count"] == 1
    assert ddb_calls == ["Query", "Query", "BatchGetItem"], "by sub and by e-mail, then sessions and shares"
    ddb_calls.clear()
    assert api("GET", BASE, query={"shared": "true"}, user="nobody").body["count"] == 0
    assert ddb_calls == ["Query", "BatchGetItem"], "nothing shared: only the caller's own counters to read"


def test_a_full_page_of_shared_sessions_reads_in_batches_of_100_keys(api: Api, ddb_calls: list[str]) -> None:
    for _ in range(40):
        session_id = api.create_session()["session_id"]
        api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    ddb_calls.clear()
    body = api("GET", BASE, query={"shared": "true", "limit": "40"}, user="bob", email="bob@example.com").body
    assert body["count"] == 40
    # 40 sessions × (session + share by sub + share by e-mail) = 120 keys
    assert ddb_calls == ["Query", "Query", "BatchGetItem", "BatchGetItem"]


def test_no_sharing_path_scans(api: Api, shared: tuple[str, str], ddb_calls: list[str]) -> None:
    session_id, share_id = shared
    api("GET", BASE, query={"shared": "true"}, user="bob", email="bob@example.com")
    api("GET", f"{BASE}/{session_id}/shares")
    api("DELETE", f"{BASE}/{session_id}/shares/{share_id}")
    assert "Scan" not in ddb_calls
