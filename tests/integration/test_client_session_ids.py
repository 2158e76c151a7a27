"""Client-chosen session ids (a UUID a front end made offline): created once, named again idempotently, taken
by nobody else, and accepted by every route, key and cursor. Given / When / Then, in-process with moto."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import boto3
import pytest

from sessions_api.logic.expiry import Expiry
from sessions_api.settings import get_settings
from tests.conftest import all_items
from tests.integration.test_chat_runs import finished
from tests.support import Api, load_function

BASE = "/api/v1/sessions"


def create(api: Api, session_id: str, user: str = "alice", **body: Any) -> Any:
    return api("POST", BASE, body={"session_id": session_id, **body}, user=user)


def partition(table: Any, session_id: str) -> list[dict[str, Any]]:
    return [item for item in all_items(table) if item["PK"] == f"SESSION#{session_id}"]


def purge() -> None:
    assert Expiry(get_settings()).run(lambda: 60_000).errors == 0


# -- create ---------------------------------------------------------------------------------------------
def test_a_client_id_creates_the_session_under_that_id(api: Api) -> None:
    session_id = str(uuid.uuid4())
    # When a client creates a session with its own id
    result = create(api, session_id, title="Offline draft")
    # Then the session has that id, where it lives and its version
    assert result.status == 201, result.body
    assert result.body["session_id"] == session_id
    assert result.headers["Location"] == f"{BASE}/{session_id}" and result.headers["ETag"] == '"1"'
    assert api("GET", f"{BASE}/{session_id}").body["title"] == "Offline draft"


def test_without_an_id_the_session_gets_a_random_one(api: Api) -> None:
    session_id = api.create_session()["session_id"]
    assert session_id.startswith("session_") and len(session_id) == 24
    int(session_id.removeprefix("session_"), 16)


@pytest.mark.parametrize(
    "session_id",
    ["a" * 8, "Z" * 64, "ab_cd-EF", "-_-_-_-_", "session_0123456789abcdef", "0B6F4D4E-7C1A-4F0E-9A39-2D5C8E1F3A70"],
)
def test_ids_of_8_to_64_safe_characters_are_accepted(api: Api, session_id: str) -> None:
    assert create(api, session_id).status == 201
    assert api("GET", f"{BASE}/{session_id}").body["session_id"] == session_id


@pytest.mark.parametrize(
    "session_id",
    [
        "a" * 7,  # one too short
        "a" * 65,  # one too long
        "",
        "../abcdefgh",
        "abcd/efgh",
        "abcd#efgh",  # `#` separates the parts of a key
        "abcd:efgh",
        "abcd.efgh",
        "abcd efgh",
        " abcdefgh",
        "abcdefgh\n",
        "abcdéfghi",  # a unicode letter
        "абвгдежз",
        "abcd%2Fefgh",
    ],
)
def test_other_ids_are_refused_and_nothing_is_stored(api: Api, table: Any, session_id: str) -> None:
    before = all_items(table)
    result = create(api, session_id)
    assert result.status == 422 and result.problem["code"] == "validation_error", result.body
    assert all_items(table) == before


def test_creating_an_id_one_owns_again_answers_the_session_unchanged(
    api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = str(uuid.uuid4())
    first = create(api, session_id, title="Mine", prompt="first words")
    assert first.status == 201
    items_before = partition(table, session_id)
    # Given the caller is at their quota of open sessions
    monkeypatch.setenv("MAX_ACTIVE_SESSIONS", "1")
    get_settings.cache_clear()
    load_function("SessionsFunction").sessions.cache_clear()
    try:
        # When the same id is created again, whatever the body says
        again = create(api, session_id, title="Other", prompt="second words", metadata={"k": "v"})
        # Then it answers 200 with the session as it was, without a Location (nothing was created)
        assert again.status == 200, again.body
        assert again.body == first.body and again.headers["ETag"] == '"1"'
        assert "Location" not in again.headers
        # And nothing was written: no second first-message, no history event, no quota charged
        assert partition(table, session_id) == items_before
        assert api("GET", BASE).body["total"] == 1
        # While a new id is over the quota
        assert create(api, str(uuid.uuid4())).problem["code"] == "session_quota_exceeded"
    finally:
        monkeypatch.delenv("MAX_ACTIVE_SESSIONS")
        get_settings.cache_clear()
        load_function("SessionsFunction").sessions.cache_clear()


def test_an_id_another_user_holds_is_a_conflict_that_names_nobody(api: Api, table: Any) -> None:
    session_id = str(uuid.uuid4())
    assert create(api, session_id, user="bob", title="Bob's").status == 201
    before = all_items(table)
    # When alice picks the same id
    result = create(api, session_id, title="Alice's")
    # Then it is taken, without saying by whom, and bob's session is untouched
    assert result.status == 409 and result.problem["code"] == "conflict"
    assert "taken" in result.problem["detail"] and "bob" not in str(result.body)
    assert all_items(table) == before
    assert api("GET", f"{BASE}/{session_id}").problem["code"] == "session_not_found"


def test_the_id_of_a_deleted_session_is_refused_until_the_purge_then_free(api: Api, table: Any) -> None:
    session_id = str(uuid.uuid4())
    assert create(api, session_id, prompt="old words").status == 201
    assert api("DELETE", f"{BASE}/{session_id}").status == 204
    # When its owner creates the id again before the purge
    mine = create(api, session_id)
    # Then it is a conflict that says why; to anyone else the id is simply taken
    assert mine.status == 409 and mine.problem["code"] == "conflict"
    assert "deleted" in mine.problem["detail"]
    theirs = create(api, session_id, user="bob")
    assert theirs.status == 409 and "taken" in theirs.problem["detail"] and "deleted" not in theirs.problem["detail"]
    # And once the purge has removed the old session, the id makes a new, empty one
    purge()
    fresh = create(api, session_id)
    assert fresh.status == 201 and fresh.body["message_count"] == 0
    assert api("GET", f"{BASE}/{session_id}/history").body["timeline"][0]["type"] == "created"
    assert len(api("GET", f"{BASE}/{session_id}/history").body["timeline"]) == 1


def test_two_racing_creates_of_one_id_make_one_session(api: Api, table: Any) -> None:
    session_id = str(uuid.uuid4())
    start = threading.Barrier(2)
    results: list[Any] = []

    def racer() -> None:
        start.wait()
        results.append(create(api, session_id, prompt="hello"))

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one created it and the other got the same session
    assert sorted(result.status for result in results) == [200, 201]
    assert results[0].body == results[1].body
    # And it exists once, with one first message and one created event
    kinds = sorted(item["SK"].split("#")[0] for item in partition(table, session_id))
    assert kinds == ["", "EVENT", "MSG"]
    assert api("GET", BASE).body["total"] == 1


def test_an_idempotency_key_replays_the_first_answer_for_a_client_id(api: Api) -> None:
    session_id = str(uuid.uuid4())
    body = {"session_id": session_id, "title": "Keyed"}
    first = api("POST", BASE, body=body, headers={"Idempotency-Key": "k1"})
    assert first.status == 201
    # A retry with the key replays the 201
    replay = api("POST", BASE, body=body, headers={"Idempotency-Key": "k1"})
    assert (
        replay.status == 201 and replay.body == first.body and replay.headers["Location"] == first.headers["Location"]
    )
    # Another key naming the same id finds the session (200), and its own retries answer the same
    for _ in range(2):
        other = api("POST", BASE, body=body, headers={"Idempotency-Key": "k2"})
        assert other.status == 200 and other.body == first.body
    # The first key with another id is another request
    changed = api("POST", BASE, body={**body, "session_id": str(uuid.uuid4())}, headers={"Idempotency-Key": "k1"})
    assert changed.status == 409 and changed.problem["code"] == "conflict"
    assert api("GET", BASE).body["total"] == 1


# -- every route --------------------------------------------------------------------------------------------
def bucket_keys(prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=get_settings().bucket_name, Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def test_a_uuid_session_id_works_on_every_route(api: Api, table: Any) -> None:
    sid = str(uuid.uuid4())
    path = f"{BASE}/{sid}"
    assert create(api, sid, title="UUID session", prompt="one").status == 201
    # Session routes
    assert api("PATCH", path, body={"title": "Renamed"}).body["title"] == "Renamed"
    assert api("GET", BASE).body["sessions"][0]["session_id"] == sid
    assert api("GET", f"{BASE}/continue").body["session_id"] == sid
    assert api("GET", f"{path}/metrics").body["session_id"] == sid
    # Messages, paged both ways by cursor
    batch = [{"role": "user", "content": f"m{i}"} for i in range(2, 6)]
    assert api("POST", f"{path}/messages", body={"messages": batch}).status == 201
    for order, expected in (("asc", ["one", "m2", "m3", "m4", "m5"]), ("desc", ["m5", "m4", "m3", "m2", "one"])):
        seen, cursor = [], None
        while True:
            query = {"limit": "2", "order": order, **({"cursor": cursor} if cursor else {})}
            page = api("GET", f"{path}/messages", query=query).body
            seen += [message["content"] for message in page["messages"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert seen == expected
    message_id = api("GET", f"{path}/messages").body["messages"][0]["message_id"]
    assert api("GET", f"{path}/messages/{message_id}").body["session_id"] == sid
    # Chat: the session named in the body of POST /chat, and a run whose request_id carries the id
    chatted = api("POST", "/api/v1/chat", body={"message": "hello", "session_id": sid})
    assert chatted.status == 200 and chatted.body["session_id"] == sid
    accepted = api("POST", f"{path}/chat/async", body={"message": "again"})
    request_id = accepted.body["request_id"]
    assert accepted.status == 202 and request_id.endswith(f"_{sid}")
    assert finished(api, request_id)["status"] == "completed"
    assert api("GET", f"{path}/runs").body["runs"][0]["request_id"] == request_id
    # Slides and exports: the S3 keys hold the id
    assert api("PUT", f"{path}/slides", body={"slides": [{"slide_id": "s1", "html": "<h1>Hi</h1>"}]}).status == 200
    assert api("GET", path).body["has_slide_deck"] is True
    export = api("POST", f"{path}/export", body={"format": "markdown"})
    assert export.status == 201, export.body
    assert api("GET", f"{path}/exports/{export.body['export_id']}").status == 200
    assert any(key.startswith(f"sessions/alice/{sid}/exports/") for key in bucket_keys("sessions/"))
    # Sharing and comments, read by the sharee
    assert api("POST", f"{path}/share", body={"recipients": ["bob"], "permissions": "collaborate"}).status == 201
    assert [s["session_id"] for s in api("GET", BASE, query={"shared": "true"}, user="bob").body["sessions"]] == [sid]
    assert api("POST", f"{path}/comments", body={"content": "nice", "comment_type": "note"}, user="bob").status == 201
    assert api("GET", f"{path}/comments", user="bob").body["comments"][0]["content"] == "nice"
    assert api("GET", f"{path}/shares").body["shares"][0]["recipient"] == "bob"
    # History, paged by cursor
    timeline, cursor = [], None
    while True:
        page = api("GET", f"{path}/history", query={"limit": "3", **({"cursor": cursor} if cursor else {})}).body
        timeline += [event["type"] for event in page["timeline"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert timeline[0] == "created" and {"renamed", "exported", "shared", "commented"} <= set(timeline)
    # Lifecycle, then delete: gone at once, and purged with its files
    assert api("POST", f"{path}/pause").body["status"] == "paused"
    assert api("POST", f"{path}/resume").body["status"] == "active"
    assert api("DELETE", path).status == 204
    assert api("GET", path).problem["code"] == "session_not_found"
    purge()
    assert partition(table, sid) == [] and bucket_keys(f"sessions/alice/{sid}/") == []


@pytest.mark.parametrize("session_id", ["run_01ARZ3NDEKTSV4RRFFQ69G5FAV_-_", "a_b-c_d-e", "--------", "________"])
def test_a_run_id_names_a_session_id_full_of_underscores_and_dashes(api: Api, session_id: str) -> None:
    assert create(api, session_id).status == 201
    accepted = api("POST", f"{BASE}/{session_id}/chat/async", body={"message": "hi"})
    run = finished(api, accepted.body["request_id"])
    assert run["status"] == "completed" and run["session_id"] == session_id
    # The cancel route finds the run from its id alone: a finished one is a conflict, not a missing one
    assert api("POST", f"/api/v1/chat/runs/{accepted.body['request_id']}/cancel").status == 409


def test_a_path_id_that_is_no_session_id_is_not_found(api: Api) -> None:
    for session_id in ("a" * 7, "a" * 65, "abcd.efgh"):
        assert api("GET", f"{BASE}/{session_id}").problem["code"] == "session_not_found"


def test_an_id_whose_deleted_session_left_items_behind_is_not_reused(api: Api, table: Any) -> None:
    # Given a deleted session whose own item is gone (its TTL) before the purge took its messages
    sid = "0b6f4d4e-7c1a-4f0e-9a39-2d5c8e1f3a71"
    assert api("POST", "/api/v1/sessions", body={"session_id": sid, "prompt": "secret"}).status == 201
    table.delete_item(Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"})
    # When anyone creates a session by that id
    refused = api("POST", "/api/v1/sessions", body={"session_id": sid}, user="bob")
    # Then it is refused, and nobody sees the old messages
    assert refused.status == 409 and "deleted" in refused.body["detail"]
    assert api("GET", f"/api/v1/sessions/{sid}/messages", user="bob").status == 404


def test_the_id_continue_is_a_route_not_a_session(api: Api) -> None:
    refused = api("POST", "/api/v1/sessions", body={"session_id": "continue"})
    assert refused.status == 422 and "route" in refused.body["errors"][0]["message"]
    assert api("POST", "/api/v1/sessions", body={"session_id": "continues"}).status == 201
