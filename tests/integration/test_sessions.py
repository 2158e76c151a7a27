"""The sessions endpoint group, in-process with moto: Given / When / Then."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from sessions_api.dal import keys
from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"


def test_create_returns_the_session_with_location_and_etag(api: Api) -> None:
    # When a client creates a session with a prompt
    result = api("POST", BASE, body={"title": "Trip plan", "prompt": "Plan a trip to Lisbon", "metadata": {"a": "b"}})
    # Then it gets 201, the session, where it lives and its version
    assert result.status == 201
    session = result.body
    assert session["session_id"].startswith("session_") and len(session["session_id"]) == 24
    assert result.headers["Location"] == f"{BASE}/{session['session_id']}"
    assert result.headers["ETag"] == '"1"'
    assert session["created_by"] == "alice"
    assert session["status"] == "active" and session["is_active"] is True
    assert session["message_count"] == 1 and session["turn_count"] == 1
    assert session["last_message_preview"] == "Plan a trip to Lisbon"
    assert session["expires_at"] > session["last_activity_at"]


def test_create_defaults(api: Api) -> None:
    result = api("POST", BASE)
    assert result.status == 201
    assert result.body["title"] == "New Chat"
    assert result.body["session_type"] == "chat"
    assert result.body["agent_name"] == "chat"


def test_prompt_is_stored_as_the_first_user_message(api: Api) -> None:
    session = api.create_session(prompt="hello there")
    result = api("GET", f"{BASE}/{session['session_id']}", query={"include": "messages"})
    assert result.status == 200
    assert [(m["role"], m["content"]) for m in result.body["messages"]] == [("user", "hello there")]


def test_get_honours_if_none_match(api: Api) -> None:
    session = api.create_session()
    result = api("GET", f"{BASE}/{session['session_id']}", headers={"If-None-Match": '"1"'})
    assert result.status == 304


def test_list_is_newest_activity_first_with_total_and_summary(api: Api) -> None:
    first = api.create_session(title="first")
    second = api.create_session(title="second")
    api.create_session(user="bob", title="bob's")
    # When the first is renamed it becomes the most recently active
    assert api("PATCH", f"{BASE}/{first['session_id']}", body={"title": "first again"}).status == 200
    result = api("GET", BASE)
    assert result.status == 200
    body = result.body
    assert [s["session_id"] for s in body["sessions"]] == [first["session_id"], second["session_id"]]
    assert body["count"] == 2 and body["total"] == 2
    assert body["summary"]["active"] == 2 and body["summary"]["expired"] == 0
    assert body["has_more"] is False and body["next_cursor"] is None


def test_list_pages_with_cursor_without_gaps_or_duplicates(api: Api) -> None:
    created = [api.create_session(title=f"s{i}")["session_id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = api("GET", BASE, query=query).body
        seen += [s["session_id"] for s in body["sessions"]]
        assert body["total"] == 7
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == list(reversed(created))


def test_list_filters(api: Api) -> None:
    api.create_session(title="Quarterly PLAN")
    api.create_session(title="Groceries", session_type="research")
    assert [s["title"] for s in api("GET", BASE, query={"search": "plan"}).body["sessions"]] == ["Quarterly PLAN"]
    assert [s["title"] for s in api("GET", BASE, query={"session_type": "research"}).body["sessions"]] == ["Groceries"]
    assert api("GET", BASE, query={"status": "completed"}).body["sessions"] == []
    assert len(api("GET", BASE, query={"date_from": "2000-01-01", "date_to": "2999-01-01"}).body["sessions"]) == 2
    assert api("GET", BASE, query={"date_from": "2999-01-01"}).body["sessions"] == []


def test_list_accepts_offset_and_page_for_compatibility(api: Api) -> None:
    created = [api.create_session(title=f"s{i}")["session_id"] for i in range(5)]
    newest_first = list(reversed(created))
    assert [s["session_id"] for s in api("GET", BASE, query={"limit": "2", "offset": "1"}).body["sessions"]] == (
        newest_first[1:3]
    )
    assert [s["session_id"] for s in api("GET", BASE, query={"limit": "2", "page": "3"}).body["sessions"]] == (
        newest_first[4:]
    )


def test_continue_returns_the_most_recently_active_active_session(api: Api) -> None:
    assert api("GET", f"{BASE}/continue").problem["code"] == "no_session_found"
    older = api.create_session(title="older")
    api.create_session(title="newer")
    api("PATCH", f"{BASE}/{older['session_id']}", body={"title": "touched"})
    result = api("GET", f"{BASE}/continue")
    assert result.status == 200 and result.body["session_id"] == older["session_id"]


def test_patch_with_if_match_and_query_title(api: Api) -> None:
    session = api.create_session()
    path = f"{BASE}/{session['session_id']}"
    renamed = api("PATCH", path, body={"title": "Renamed", "metadata": {"k": "v"}}, headers={"If-Match": '"1"'})
    assert renamed.status == 200 and renamed.body["title"] == "Renamed" and renamed.headers["ETag"] == '"2"'
    stale = api("PATCH", path, body={"title": "Stale"}, headers={"If-Match": '"1"'})
    assert stale.status == 412 and stale.problem["code"] == "precondition_failed"
    by_query = api("PATCH", path, query={"title": "From query"})
    assert by_query.status == 200 and by_query.body["title"] == "From query"
    assert api("GET", path).body["metadata"] == {"k": "v"}


def test_delete_hides_the_session_everywhere_at_once(api: Api) -> None:
    session = api.create_session(prompt="hi")
    path = f"{BASE}/{session['session_id']}"
    assert api("DELETE", path).status == 204
    assert api("GET", path).problem["code"] == "session_not_found"
    assert api("DELETE", path).status == 404
    listing = api("GET", BASE).body
    assert listing["sessions"] == [] and listing["total"] == 0 and listing["summary"]["active"] == 0
    assert api("GET", f"{BASE}/continue").status == 404


def test_delete_of_a_non_active_session_keeps_counters_exact(api: Api, table: Any) -> None:
    session = api.create_session()
    table.update_item(
        Key={"PK": f"SESSION#{session['session_id']}", "SK": "#SESSION"},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": "completed"},
    )
    table.update_item(
        Key={"PK": "USER#alice", "SK": "COUNTERS"},
        UpdateExpression="ADD s_active :m, s_completed :p, open_count :m",
        ExpressionAttributeValues={":m": -1, ":p": 1},
    )
    assert api("DELETE", f"{BASE}/{session['session_id']}").status == 204
    counters = table.get_item(Key={"PK": "USER#alice", "SK": "COUNTERS"})["Item"]
    assert counters["total"] == 0 and counters["s_completed"] == 0 and counters["open_count"] == 0


def test_cleanup_deletes_only_the_callers_own(api: Api) -> None:
    mine = [api.create_session()["session_id"] for _ in range(3)]
    theirs = api.create_session(user="bob")["session_id"]
    result = api("POST", f"{BASE}/cleanup", body={"session_ids": [*mine[:2], theirs, "session_ffffffffffffffff", "x"]})
    assert result.status == 200
    assert result.body == {
        "deleted": 2,
        "session_ids": mine[:2],
        "not_found": [theirs, "session_ffffffffffffffff", "x"],
    }
    assert api("GET", f"{BASE}/{theirs}", user="bob").status == 200
    assert api("GET", BASE).body["total"] == 1


def test_quota_of_open_sessions(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessions_api.settings import get_settings

    monkeypatch.setenv("MAX_ACTIVE_SESSIONS", "2")
    get_settings.cache_clear()
    try:
        app = __import__("tests.support", fromlist=["load_function"]).load_function("SessionsFunction")
        app.sessions.cache_clear()
        first = api.create_session()
        api.create_session()
        over = api("POST", BASE)
        assert over.status == 429 and over.problem["code"] == "session_quota_exceeded"
        # Deleting one frees a slot
        api("DELETE", f"{BASE}/{first['session_id']}")
        assert api("POST", BASE).status == 201
        assert api("GET", BASE).body["total"] == 2
    finally:
        monkeypatch.delenv("MAX_ACTIVE_SESSIONS")
        get_settings.cache_clear()
        app.sessions.cache_clear()


def test_idempotency_key_replays_the_first_response(api: Api, table: Any) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = api("POST", BASE, body={"title": "Once"}, headers=headers)
    replays = [api("POST", BASE, body={"title": "Once"}, headers=headers) for _ in range(10)]
    assert all(r.status == 201 and r.body["session_id"] == first.body["session_id"] for r in replays)
    assert api("GET", BASE).body["total"] == 1
    different = api("POST", BASE, body={"title": "Other"}, headers=headers)
    assert different.status == 409 and different.problem["code"] == "conflict"
    # Another user's identical key is theirs alone
    assert (
        api("POST", BASE, body={"title": "Once"}, headers=headers, user="bob").body["session_id"]
        != (first.body["session_id"])
    )


def test_another_users_session_is_404_on_every_route(api: Api) -> None:
    session = api.create_session(user="bob", prompt="secret")
    path = f"{BASE}/{session['session_id']}"
    for method, kwargs in [
        ("GET", {}),
        ("GET", {"query": {"include": "messages"}}),
        ("PATCH", {"body": {"title": "mine now"}}),
        ("DELETE", {}),
    ]:
        result = api(method, path, **kwargs)
        assert result.status == 404, (method, result.body)
        assert result.problem["code"] == "session_not_found"
        assert "secret" not in json.dumps(result.body)
    assert api("GET", path, user="bob").body["title"] == "New Chat"


def _problem(result: Any, status: int, code: str) -> None:
    assert result.status == status, result.body
    assert result.headers["Content-Type"] == "application/problem+json"
    problem = result.body
    assert problem["code"] == code and problem["status"] == status
    assert problem["type"].endswith("/" + code)
    assert {"title", "detail", "instance", "request_id", "timestamp"} <= problem.keys()


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("malformed json", "POST", {"body": "{not json"}, 400, "bad_request"),
    ("wrong type", "POST", {"body": {"title": 5}}, 422, "validation_error"),
    ("unknown field", "POST", {"body": {"colour": "red"}}, 422, "validation_error"),
    ("server-owned created_by", "POST", {"body": {"created_by": "mallory"}}, 422, "validation_error"),
    ("server-owned message_count", "POST", {"body": {"message_count": 9}}, 422, "validation_error"),
    ("path-like session_id", "POST", {"body": {"session_id": "../../x/y/z"}}, 422, "validation_error"),
    ("over-long title", "POST", {"body": {"title": "x" * 201}}, 422, "validation_error"),
    ("blank title", "POST", {"body": {"title": "   "}}, 422, "validation_error"),
    ("title with newline", "POST", {"body": {"title": "a\r\nSet-Cookie: x"}}, 422, "validation_error"),
    (
        "too many metadata keys",
        "POST",
        {"body": {"metadata": {f"k{i}": "v" for i in range(17)}}},
        422,
        "validation_error",
    ),
    ("over-long metadata value", "POST", {"body": {"metadata": {"k": "v" * 513}}}, 422, "validation_error"),
    ("over-long metadata key", "POST", {"body": {"metadata": {"k" * 65: "v"}}}, 422, "validation_error"),
    ("bad session type", "POST", {"body": {"session_type": "poetry"}}, 422, "validation_error"),
    ("lone surrogate", "POST", {"body": '{"title": "\\ud800"}'}, 422, "validation_error"),
    ("body over 1 MiB", "POST", {"body": {"prompt": "x" * (1024 * 1024 + 10)}}, 413, "payload_too_large"),
    (
        "wrong content type",
        "POST",
        {"body": "title=x", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    ("missing claims", "POST", {"body": {}, "user": None}, 401, "unauthorized"),
    ("unsupported method", "PUT", {"body": {}}, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("case", "method", "kwargs", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_create_is_a_problem_and_changes_nothing(
    api: Api, table: Any, case: str, method: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    before = all_items(table)
    _problem(api(method, BASE, **kwargs), status, code)
    assert all_items(table) == before


BAD_READS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("limit zero", BASE, {"query": {"limit": "0"}}, 422, "validation_error"),
    ("limit over 100", BASE, {"query": {"limit": "101"}}, 422, "validation_error"),
    ("limit not a number", BASE, {"query": {"limit": "ten"}}, 422, "validation_error"),
    ("bad status filter", BASE, {"query": {"status": "sleeping"}}, 422, "validation_error"),
    ("edited cursor", BASE, {"query": {"cursor": "eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"}}, 400, "bad_request"),
    ("garbage cursor", BASE, {"query": {"cursor": "%%%"}}, 400, "bad_request"),
    ("malformed session id", f"{BASE}/not-a-session", {}, 404, "session_not_found"),
    ("missing session", f"{BASE}/session_0123456789abcdef", {}, 404, "session_not_found"),
    ("bad include", f"{BASE}/session_0123456789abcdef", {"query": {"include": "everything"}}, 422, "validation_error"),
    ("missing claims", BASE, {"user": None}, 401, "unauthorized"),
]


@pytest.mark.parametrize(("case", "path", "kwargs", "status", "code"), BAD_READS, ids=[c[0] for c in BAD_READS])
def test_bad_reads_are_problems(api: Api, case: str, path: str, kwargs: dict[str, Any], status: int, code: str) -> None:
    _problem(api("GET", path, **kwargs), status, code)


def test_foreign_cursor_is_refused(api: Api) -> None:
    for _ in range(3):
        api.create_session()
    cursor = api("GET", BASE, query={"limit": "1"}).body["next_cursor"]
    _problem(api("GET", BASE, query={"cursor": cursor}, user="bob"), 400, "bad_request")
    _problem(api("GET", BASE, query={"cursor": cursor, "search": "x"}), 400, "bad_request")
    edited = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    _problem(api("GET", BASE, query={"cursor": edited}), 400, "bad_request")


def test_bad_patches_change_nothing(api: Api, table: Any) -> None:
    session = api.create_session()
    path = f"{BASE}/{session['session_id']}"
    before = all_items(table)
    _problem(api("PATCH", path, body={"created_by": "mallory"}), 422, "validation_error")
    _problem(api("PATCH", path, body={"version": 7}), 422, "validation_error")
    _problem(api("PATCH", path, body={}), 422, "validation_error")
    _problem(api("PATCH", path, body={"title": None}), 422, "validation_error")
    _problem(api("PATCH", path, body={"title": "x"}, headers={"If-Match": '"9"'}), 412, "precondition_failed")
    _problem(api("PATCH", path, body={"title": "x"}, headers={"If-Match": "garbage"}), 412, "precondition_failed")
    _problem(api("POST", f"{BASE}/cleanup", body={"session_ids": ["a"] * 101}), 422, "validation_error")
    _problem(api("POST", f"{BASE}/cleanup", body={"session_ids": []}), 422, "validation_error")
    assert all_items(table) == before


def test_a_prompt_too_large_for_an_item_round_trips_through_s3(api: Api) -> None:
    prompt = "€" * 100_000  # 300 KB of UTF-8: within the 100,000-character limit, beyond an item
    session = api.create_session(prompt=prompt)
    assert session["last_message_preview"].startswith("€€€")
    result = api("GET", f"{BASE}/{session['session_id']}", query={"include": "messages"})
    assert result.body["messages"][0]["content"] == prompt


def test_a_refused_create_leaves_no_large_prompt_behind(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from sessions_api.settings import get_settings
    from tests.support import load_function

    monkeypatch.setenv("MAX_ACTIVE_SESSIONS", "1")
    get_settings.cache_clear()
    app = load_function("SessionsFunction")
    app.sessions.cache_clear()
    try:
        api.create_session()
        assert api("POST", BASE, body={"prompt": "€" * 100_000}).status == 429
        bucket = get_settings().bucket_name
        assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    finally:
        monkeypatch.delenv("MAX_ACTIVE_SESSIONS")
        get_settings.cache_clear()
        app.sessions.cache_clear()


@pytest.mark.parametrize("value", [1e300, -1e300, 1e-200, 2**60])
def test_numbers_dynamodb_cannot_store_are_refused(api: Api, table: Any, value: float) -> None:
    before = all_items(table)
    _problem(api("POST", BASE, body={"preferences": {"x": value}}), 422, "validation_error")
    assert all_items(table) == before


def test_ordinary_preference_numbers_round_trip(api: Api, table: Any) -> None:
    preferences = {"temperature": 0.7, "max": 4096, "tiny": 1e-50, "on": True}
    session = api.create_session(preferences=preferences)
    assert session["preferences"] == preferences
    # What was stored reads back the same, and the item holds the exact numbers (not strings or rounded)
    assert api("GET", f"{BASE}/{session['session_id']}").body["preferences"] == preferences
    stored = table.get_item(Key=keys.session_key(session["session_id"]))["Item"]["preferences"]
    assert stored == {"temperature": Decimal("0.7"), "max": 4096, "tiny": Decimal("1E-50"), "on": True}


@pytest.mark.parametrize("title", ["two\nlines", " ", "x" * 201])
def test_a_bad_title_in_the_query_is_refused_like_one_in_the_body(api: Api, table: Any, title: str) -> None:
    session = api.create_session()
    before = all_items(table)
    _problem(api("PATCH", f"{BASE}/{session['session_id']}", query={"title": title}), 422, "validation_error")
    assert all_items(table) == before


def _listed(api: Api, session_id: str) -> dict[str, Any]:
    return next(s for s in api("GET", BASE).body["sessions"] if s["session_id"] == session_id)


def test_has_slide_deck_is_on_the_session_and_in_the_list(api: Api, ddb_calls: list[str]) -> None:
    sid = api.create_session()["session_id"]
    assert api("GET", f"{BASE}/{sid}").body["has_slide_deck"] is False and _listed(api, sid)["has_slide_deck"] is False
    # When a deck is written
    assert api("PUT", f"{BASE}/{sid}/slides", body={"slides": [{"slide_id": "a", "html": "<h1>A</h1>"}]}).status == 200
    # Then the session says so, read alone or listed, at the same cost as before
    ddb_calls.clear()
    assert api("GET", f"{BASE}/{sid}").body["has_slide_deck"] is True
    assert _listed(api, sid)["has_slide_deck"] is True
    assert ddb_calls == ["BatchGetItem", "Query"]
    # And a deck whose last slide was deleted still exists (GET /slides answers it, empty)
    api("DELETE", f"{BASE}/{sid}/slides/a")
    assert api("GET", f"{BASE}/{sid}").body["has_slide_deck"] is True


def test_active_run_is_the_run_holding_the_turn_while_its_lease_holds(
    api: Api, table: Any, no_chat_worker: None, ddb_calls: list[str]
) -> None:
    sid = api.create_session()["session_id"]
    assert api("GET", f"{BASE}/{sid}").body["active_run"] is None and _listed(api, sid)["active_run"] is None
    # Given a chat run that holds the session's turn (no worker takes it in this test)
    request_id = api("POST", f"{BASE}/{sid}/chat/async", body={"message": "hi"}).body["request_id"]
    # Then the session names it, read alone or listed, at the same cost as before
    ddb_calls.clear()
    assert api("GET", f"{BASE}/{sid}").body["active_run"] == request_id
    assert _listed(api, sid)["active_run"] == request_id
    assert ddb_calls == ["BatchGetItem", "Query"]
    # When its lease lapses (its worker is gone), it is no longer shown as in progress
    lapsed = int(time.time()) - 1
    table.update_item(
        Key=keys.session_key(sid),
        UpdateExpression="SET active_run_until = :t",
        ExpressionAttributeValues={":t": lapsed},
    )
    assert api("GET", f"{BASE}/{sid}").body["active_run"] is None and _listed(api, sid)["active_run"] is None
