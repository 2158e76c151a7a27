"""Sharing, in-process with moto: Given / When / Then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sessions_api.dal import keys
from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"


def share(api: Api, session_id: str, recipients: list[str], permissions: str = "view", **extra: Any) -> Any:
    result = api(
        "POST", f"{BASE}/{session_id}/share", body={"recipients": recipients, "permissions": permissions, **extra}
    )
    assert result.status == 201, result.body
    return result.body


def future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def expire_share(table: Any, session_id: str, kind: str, recipient: str) -> None:
    """An API client cannot make a share that is already over: age it in the table."""
    table.update_item(
        Key=keys.share_key(session_id, kind, recipient),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": "2020-01-01T00:00:00.000Z"},
    )


@pytest.fixture
def session_id(api: Api) -> str:
    return api.create_session(title="Quarterly plan", prompt="hello")["session_id"]


# -- POST /sessions/{id}/share ------------------------------------------------------------------------


def test_share_returns_the_share_and_gives_each_recipient_access(api: Api, table: Any, session_id: str) -> None:
    # When the owner shares with a user id and an e-mail address
    result = api(
        "POST",
        f"{BASE}/{session_id}/share",
        body={
            "recipients": ["bob", "Carol@Example.COM", "bob"],
            "permissions": "edit",
            "message": "have a look",
            "expiration": future(days=7),
        },
        headers={"x-forwarded-proto": "https"},
    )
    # Then it gets the share, recipients normalised (duplicates once, e-mail lower-cased)
    assert result.status == 201
    body = result.body
    assert body["share_id"].startswith("shr_")
    assert body["recipients"] == ["bob", "carol@example.com"]
    assert body["permissions"] == "edit" and body["message"] == "have a look"
    assert body["expires_at"].endswith("Z") and body["expires_at"] > body["created_at"]
    assert body["share_url"] == f"https://api1234567.execute-api.us-east-1.amazonaws.com/api/v1/sessions/{session_id}"
    # And both recipients may now read and edit it; bob by his sub, carol by her (verified) e-mail claim
    assert api("GET", f"{BASE}/{session_id}", user="bob").status == 200
    assert (
        api("PATCH", f"{BASE}/{session_id}", body={"title": "x"}, user="carol-sub", email="CAROL@example.com").status
        == 200
    )
    # And one item per recipient in the session's partition, indexed for "shared with me"
    shares = [item for item in all_items(table) if item["SK"].startswith("SHARE#")]
    assert sorted(item["SK"] for item in shares) == ["SHARE#EMAIL#carol@example.com", "SHARE#USER#bob"]
    assert {item["GSI2PK"] for item in shares} == {"SHARED#bob", "SHARED#carol@example.com"}
    # And the session's history says it was shared, without naming the recipients
    history = [item for item in all_items(table) if item["SK"].startswith("EVENT#") and item["event_type"] == "shared"]
    assert history[0]["data"] == {"share_id": body["share_id"], "permissions": "edit", "recipient_count": 2}
    assert "carol" not in str(history)


@pytest.mark.parametrize(
    ("verified", "status"),
    [("true", 200), (True, 200), ("TRUE", 200), ("false", 404), (None, 404), ("", 404), ("1", 404)],
    ids=["true", "boolean true", "TRUE", "false", "unstated", "empty", "1"],
)
def test_only_a_verified_email_claim_grants_an_email_share(
    api: Api, session_id: str, verified: str | bool | None, status: int
) -> None:
    # Given a share to an address, and a caller whose token carries that address
    share(api, session_id, ["dave@example.com"])
    claims: dict[str, Any] = {"sub": "mallory", "email": "dave@example.com"}
    if verified is not None:
        claims["email_verified"] = verified
    from tests.support import http_event

    logical_id, event = http_event("GET", f"{BASE}/{session_id}", user="mallory")
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    # Then only an address the issuer says it verified is the recipient (unstated: an external IdP may not check)
    assert api.invoke(logical_id, event).status == status


def test_permissions_are_what_the_contract_says(api: Api, session_id: str) -> None:
    share(api, session_id, ["viewer"], "view")
    share(api, session_id, ["editor"], "edit")
    # view reads but does not write; edit writes but does not comment or share
    assert api("GET", f"{BASE}/{session_id}", user="viewer").status == 200
    assert api("PATCH", f"{BASE}/{session_id}", body={"title": "x"}, user="viewer").problem["code"] == (
        "session_not_accessible"
    )
    assert api("PATCH", f"{BASE}/{session_id}", body={"title": "x"}, user="editor").status == 200
    comment = {"content": "hi", "comment_type": "note"}
    assert api("POST", f"{BASE}/{session_id}/comments", body=comment, user="editor").status == 403
    assert (
        api(
            "POST", f"{BASE}/{session_id}/share", body={"recipients": ["x"], "permissions": "view"}, user="editor"
        ).status
        == 403
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": [], "permissions": "view"}, "body.recipients"),
        ({"recipients": [f"user{i}" for i in range(51)], "permissions": "view"}, "body.recipients"),
        ({"recipients": ["bob"], "permissions": "admin"}, "body.permissions"),
        ({"recipients": ["not an id"], "permissions": "view"}, "body.recipients.0"),
        ({"recipients": ["bob@nowhere"], "permissions": "view"}, "body.recipients.0"),
        ({"recipients": ["bob"], "permissions": "view", "created_by": "eve"}, "body.created_by"),
        ({"recipients": ["bob"], "permissions": "view", "expiration": "2020-01-01T00:00:00Z"}, "body.expiration"),
        ({"recipients": ["bob"], "permissions": "view", "expiration": "next week"}, "body.expiration"),
        ({"recipients": ["bob", "alice"], "permissions": "view"}, "body.recipients.1"),
        ({"recipients": ["ALICE@example.com"], "permissions": "view"}, "body.recipients.0"),
    ],
)
def test_invalid_shares_are_422_and_change_nothing(
    api: Api, table: Any, session_id: str, body: dict[str, Any], field: str
) -> None:
    before = all_items(table)
    result = api("POST", f"{BASE}/{session_id}/share", body=body, email="alice@example.com")
    assert result.status == 422, result.body
    assert any(error["field"].startswith(field) for error in result.problem["errors"]), result.body
    assert all_items(table) == before


def test_sharing_again_replaces_the_recipients_grant(api: Api, session_id: str) -> None:
    first = share(api, session_id, ["bob"], "collaborate")
    second = share(api, session_id, ["bob"], "view")
    assert (
        api("POST", f"{BASE}/{session_id}/comments", body={"content": "x", "comment_type": "note"}, user="bob").status
        == 403
    )
    grants = api("GET", f"{BASE}/{session_id}/shares").body["shares"]
    assert [(g["recipient"], g["share_id"], g["permissions"]) for g in grants] == [("bob", second["share_id"], "view")]
    # And revoking the earlier share no longer touches bob's access
    assert api("DELETE", f"{BASE}/{session_id}/shares/{first['share_id']}").problem["code"] == "share_not_found"
    assert api("GET", f"{BASE}/{session_id}", user="bob").status == 200


def test_an_expired_session_cannot_be_shared(api: Api, table: Any, session_id: str) -> None:
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "expired"},
    )
    result = api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    assert result.status == 409 and result.problem["code"] == "session_expired"


def test_a_retried_share_with_the_same_idempotency_key_creates_nothing_new(
    api: Api, table: Any, session_id: str
) -> None:
    body = {"recipients": ["bob"], "permissions": "view"}
    first = api("POST", f"{BASE}/{session_id}/share", body=body, headers={"Idempotency-Key": "k1"})
    items = all_items(table)
    again = api("POST", f"{BASE}/{session_id}/share", body=body, headers={"Idempotency-Key": "k1"})
    assert again.status == 201 and again.body == first.body
    assert all_items(table) == items


# -- GET /sessions/{id}/shares · DELETE …/shares/{share_id} --------------------------------------------


def test_the_owner_lists_every_grant_page_by_page(api: Api, table: Any, session_id: str) -> None:
    share(api, session_id, ["bob", "carol@example.com"], "edit")
    share(api, session_id, ["dave"], "view", expiration=future(hours=1))
    expire_share(table, session_id, "user", "dave")
    seen, cursor = [], None
    while True:
        body = api(
            "GET", f"{BASE}/{session_id}/shares", query={"limit": "2", **({"cursor": cursor} if cursor else {})}
        ).body
        seen += body["shares"]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert sorted((g["recipient"], g["recipient_kind"], g["expired"]) for g in seen) == [
        ("bob", "user", False),
        ("carol@example.com", "email", False),
        ("dave", "user", True),
    ]
    # A cursor is bound to its listing and caller
    assert api("GET", f"{BASE}/{session_id}/shares", query={"cursor": cursor or "x.y"}, user="bob").status in (400, 403)
    assert api("GET", f"{BASE}/{session_id}/shares", query={"cursor": "abc.def"}).problem["code"] == "bad_request"


def test_revoking_takes_every_recipient_of_the_share_away_at_once(api: Api, table: Any, session_id: str) -> None:
    revoked = share(api, session_id, ["bob", "carol@example.com"], "edit")
    kept = share(api, session_id, ["dave"], "view")
    result = api("DELETE", f"{BASE}/{session_id}/shares/{revoked['share_id']}")
    assert result.status == 204
    assert api("GET", f"{BASE}/{session_id}", user="bob").problem["code"] == "session_not_found"
    assert api("GET", f"{BASE}/{session_id}", user="carol", email="carol@example.com").status == 404
    assert api("GET", f"{BASE}/{session_id}", user="dave").status == 200
    assert [g["share_id"] for g in api("GET", f"{BASE}/{session_id}/shares").body["shares"]] == [kept["share_id"]]
    events = [item["event_type"] for item in all_items(table) if item["SK"].startswith("EVENT#")]
    assert "share_revoked" in events
    # And a second revocation finds nothing
    assert api("DELETE", f"{BASE}/{session_id}/shares/{revoked['share_id']}").problem["code"] == "share_not_found"
    assert api("DELETE", f"{BASE}/{session_id}/shares/not-a-share").problem["code"] == "share_not_found"


# -- GET /sessions?shared=true ------------------------------------------------------------------------


def listed(api: Api, user: str, email: str | None = None, **query: str) -> Any:
    result = api("GET", BASE, query={"shared": "true", **query}, user=user, email=email)
    assert result.status == 200, result.body
    return result.body


def test_shared_with_me_lists_by_user_id_and_email_newest_share_first(api: Api) -> None:
    a = api.create_session(title="a")["session_id"]
    b = api.create_session(title="b")["session_id"]
    c = api.create_session(user="carol", title="c")["session_id"]
    share(api, a, ["bob"], "view")
    share(api, b, ["bob@example.com"], "collaborate")
    assert (
        api("POST", f"{BASE}/{c}/share", body={"recipients": ["bob"], "permissions": "edit"}, user="carol").status
        == 201
    )
    body = listed(api, "bob", "bob@example.com")
    assert [(s["session_id"], s["permission"]) for s in body["sessions"]] == [
        (c, "edit"),
        (b, "collaborate"),
        (a, "view"),
    ]
    assert body["count"] == 3 and body["has_more"] is False and body["next_cursor"] is None
    # Without the e-mail claim only the shares to the user id count
    assert [s["session_id"] for s in listed(api, "bob")["sessions"]] == [c, a]
    # And the owner's own list is unchanged by it
    assert [s["session_id"] for s in api("GET", BASE, user="bob").body["sessions"]] == []


def test_shared_with_me_pages_across_both_identities_without_gaps_or_duplicates(api: Api) -> None:
    created = []
    for i in range(7):
        session = api.create_session(title=f"s{i}")["session_id"]
        share(api, session, ["bob" if i % 2 else "bob@example.com"], "view")
        created.append(session)
    both = created[3]
    share(api, both, ["bob@example.com"], "edit")  # shared with both identities: listed once, at the newer share
    seen, cursor = [], None
    while True:
        body = listed(api, "bob", "bob@example.com", limit="3", **({"cursor": cursor} if cursor else {}))
        seen += [(s["session_id"], s["permission"]) for s in body["sessions"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    expected = [(both, "edit")] + [(sid, "view") for sid in reversed(created) if sid != both]
    assert seen == expected


def test_shared_with_me_drops_revoked_expired_and_deleted(api: Api, table: Any) -> None:
    revoked, expired, deleted, kept = (api.create_session(title=t)["session_id"] for t in "rxdk")
    revoked_share = share(api, revoked, ["bob"])
    share(api, expired, ["bob"], expiration=future(hours=1))
    share(api, deleted, ["bob"])
    share(api, kept, ["bob"])
    api("DELETE", f"{BASE}/{revoked}/shares/{revoked_share['share_id']}")
    expire_share(table, expired, "user", "bob")
    assert api("DELETE", f"{BASE}/{deleted}").status == 204
    assert [s["session_id"] for s in listed(api, "bob")["sessions"]] == [kept]
    assert api("GET", f"{BASE}/{deleted}", user="bob").status == 404


def test_shared_with_me_refuses_other_filters_and_foreign_cursors(api: Api) -> None:
    assert api("GET", BASE, query={"shared": "true", "status": "active"}).status == 422
    for i in range(3):
        share(api, api.create_session(title=f"s{i}")["session_id"], ["bob"])
    cursor = listed(api, "bob", limit="1")["next_cursor"]
    assert api("GET", BASE, query={"shared": "true", "cursor": cursor}, user="eve").problem["code"] == "bad_request"
    assert api("GET", BASE, query={"cursor": cursor}, user="bob").problem["code"] == "bad_request"
    assert listed(api, "bob", cursor=cursor, limit="1")["count"] == 1


def test_an_expired_session_can_still_be_revoked_without_reviving_it(api: Api, table: Any, session_id: str) -> None:
    granted = share(api, session_id, ["bob"])
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "expired"},
    )
    before = table.get_item(Key=keys.session_key(session_id))["Item"]
    assert api("DELETE", f"{BASE}/{session_id}/shares/{granted['share_id']}").status == 204
    after = table.get_item(Key=keys.session_key(session_id))["Item"]
    assert api("GET", f"{BASE}/{session_id}", user="bob").status == 404
    assert after["status"] == "expired" and after["version"] == before["version"] + 1
    assert (after["last_activity_at"], after.get("GSI3SK")) == (before["last_activity_at"], before.get("GSI3SK"))


def test_a_purged_session_leaves_no_share_or_comment_behind(api: Api, table: Any, session_id: str) -> None:
    # Given a shared, commented session that its owner deletes
    share(api, session_id, ["bob", "bob@example.com"], "collaborate")
    comment = {"content": "x", "comment_type": "note"}
    assert api("POST", f"{BASE}/{session_id}/comments", body=comment, user="bob").status == 201
    assert api("DELETE", f"{BASE}/{session_id}").status == 204
    # When the scheduled function purges it
    from sessions_api.logic.expiry import Expiry
    from sessions_api.settings import get_settings

    assert Expiry(get_settings()).run(lambda: 60_000).purged == 1
    # Then nothing of its partition is left, so no recipient's index entry either
    assert [item for item in all_items(table) if item["PK"] == keys.session_pk(session_id)] == []
    for recipient in ("bob", "bob@example.com"):
        entries = table.query(
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :pk",
            ExpressionAttributeValues={":pk": keys.shared_gsi2pk(recipient)},
        )
        assert entries["Items"] == []
    assert listed(api, "bob", "bob@example.com")["sessions"] == []
