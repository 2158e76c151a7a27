"""Comments, in-process with moto: Given / When / Then."""

from __future__ import annotations

from typing import Any

import pytest

from sessions_api.dal import keys
from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"


@pytest.fixture
def session_id(api: Api) -> str:
    session_id = api.create_session(title="Quarterly plan", prompt="hello")["session_id"]
    for user, permission in (("viewer", "view"), ("collaborator", "collaborate")):
        body = {"recipients": [user], "permissions": permission}
        assert api("POST", f"{BASE}/{session_id}/share", body=body).status == 201
    return session_id


def comment(api: Api, session_id: str, user: str = "alice", **body: Any) -> Any:
    return api("POST", f"{BASE}/{session_id}/comments", body={"comment_type": "note", **body}, user=user)


def test_a_comment_is_stored_with_its_author_and_recorded_in_the_history(api: Api, table: Any, session_id: str) -> None:
    version = api("GET", f"{BASE}/{session_id}").body["version"]
    # When a collaborator comments on a message
    message_id = api("GET", f"{BASE}/{session_id}", query={"include": "messages"}).body["messages"][0]["message_id"]
    result = comment(
        api,
        session_id,
        "collaborator",
        content="Is this right?",
        comment_type="question",
        reference_point={"message_id": message_id, "quote": "hello"},
    )
    # Then it gets the comment, authored by the caller
    assert result.status == 201
    body = result.body
    assert body["comment_id"].startswith("cmt_") and body["author"] == "collaborator"
    assert body["content"] == "Is this right?" and body["comment_type"] == "question"
    assert body["reference_point"] == {"message_id": message_id, "slide_id": None, "quote": "hello"}
    # And the session was touched, and its history says who commented
    assert api("GET", f"{BASE}/{session_id}").body["version"] == version + 1
    events = [
        item for item in all_items(table) if item["SK"].startswith("EVENT#") and item["event_type"] == "commented"
    ]
    assert [(e["actor"], e["data"]["comment_id"]) for e in events] == [("collaborator", body["comment_id"])]


def test_readers_list_comments_oldest_first_page_by_page(api: Api, session_id: str) -> None:
    created = [comment(api, session_id, content=f"c{i}").body["comment_id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        result = api("GET", f"{BASE}/{session_id}/comments", query=query, user="viewer")
        assert result.status == 200
        seen += [c["comment_id"] for c in result.body["comments"]]
        if not result.body["has_more"]:
            break
        cursor = result.body["next_cursor"]
    assert seen == created
    # A cursor of another session's listing or another caller is refused
    other = api.create_session()["session_id"]
    first = api("GET", f"{BASE}/{session_id}/comments", query={"limit": "1"}).body["next_cursor"]
    assert api("GET", f"{BASE}/{other}/comments", query={"cursor": first}).problem["code"] == "bad_request"
    assert api("GET", f"{BASE}/{session_id}/comments", query={"cursor": first}, user="viewer").status == 400


def test_only_the_owner_and_collaborators_comment(api: Api, session_id: str) -> None:
    assert comment(api, session_id, "viewer", content="x").problem["code"] == "session_not_accessible"
    assert comment(api, session_id, "stranger", content="x").problem["code"] == "session_not_found"
    assert comment(api, session_id, "collaborator", content="x").status == 201


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 10_001},
        {"content": "x", "comment_type": "rant"},
        {"content": "x", "reference_point": {}},
        {"content": "x", "reference_point": {"message_id": "msg_1"}},
        {"content": "x", "reference_point": {"page": 3}},
        {"content": "x", "author": "eve"},
        {"content": "x", "created_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_invalid_comments_are_422_and_change_nothing(
    api: Api, table: Any, session_id: str, body: dict[str, Any]
) -> None:
    before = all_items(table)
    result = comment(api, session_id, **body)
    assert result.status == 422, result.body
    assert all_items(table) == before


def test_comment_type_is_required(api: Api, session_id: str) -> None:
    result = api("POST", f"{BASE}/{session_id}/comments", body={"content": "x"})
    assert result.status == 422


def test_the_longest_comment_is_accepted(api: Api, session_id: str) -> None:
    assert comment(api, session_id, content="x" * 10_000).status == 201


def test_an_expired_session_takes_no_comments(api: Api, table: Any, session_id: str) -> None:
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "expired"},
    )
    assert comment(api, session_id, content="x").problem["code"] == "session_expired"
    assert comment(api, session_id, "collaborator", content="x").problem["code"] == "session_expired"
    assert api("GET", f"{BASE}/{session_id}/comments", user="viewer").status == 200


def test_a_retried_comment_with_the_same_idempotency_key_creates_nothing_new(
    api: Api, table: Any, session_id: str
) -> None:
    body = {"content": "once", "comment_type": "insight"}
    first = api("POST", f"{BASE}/{session_id}/comments", body=body, headers={"Idempotency-Key": "c1"})
    items = all_items(table)
    again = api("POST", f"{BASE}/{session_id}/comments", body=body, headers={"Idempotency-Key": "c1"})
    assert again.status == 201 and again.body == first.body
    assert all_items(table) == items
    other = api(
        "POST", f"{BASE}/{session_id}/comments", body={**body, "content": "twice"}, headers={"Idempotency-Key": "c1"}
    )
    assert other.problem["code"] == "conflict"
