"""An `Idempotency-Key` replay passes the same access check as a first call, on every route that takes one.

A replay skips the route's code (Powertools returns the stored response), so these tests make the first
call while the caller may, take the access away, and replay: the stored response must not come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from sessions_api.logic.expiry import Expiry
from sessions_api.settings import get_settings
from tests.support import Api

BASE = "/api/v1/sessions"


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # `{id}` stands for the session
    body: dict[str, Any]
    sharee_may: bool  # a collaborate sharee may make the first call


ROUTES = [
    Route("append", "/messages", {"role": "user", "content": "héllo"}, True),
    Route("comment", "/comments", {"content": "a note", "comment_type": "note"}, True),
    Route("export", "/export", {"format": "markdown"}, True),
    Route("share", "/share", {"recipients": ["carol"], "permissions": "view"}, False),
]
IDS = [route.name for route in ROUTES]


def call(api: Api, route: Route, session_id: str, user: str, key: str = "replay-me") -> Any:
    return api("POST", f"{BASE}/{session_id}{route.path}", body=route.body, headers={"Idempotency-Key": key}, user=user)


def shared_session(api: Api, permissions: str = "collaborate") -> tuple[str, str]:
    session_id = api.create_session(user="alice", title="Secret plans")["session_id"]
    shared = api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": permissions})
    assert shared.status == 201, shared.body
    return session_id, shared.body["share_id"]


def purge() -> None:
    report = Expiry(get_settings()).run(lambda: 60_000)
    assert report.errors == 0


def idempotency_items(table_name: str) -> list[dict[str, Any]]:
    items = boto3.resource("dynamodb").Table(table_name).scan()["Items"]
    return [item for item in items if "IDEMPOTENCY" in item["PK"] or item["SK"].startswith("IDEMPOTENCY")]


@pytest.mark.parametrize("route", [route for route in ROUTES if route.sharee_may], ids=lambda route: route.name)
def test_a_replay_after_the_share_is_revoked_answers_like_a_stranger(api: Api, route: Route) -> None:
    # Given a sharee's request under a key, answered while the share was live
    session_id, share_id = shared_session(api)
    first = call(api, route, session_id, "bob")
    assert first.status == 201, first.body
    assert call(api, route, session_id, "bob").body == first.body or route.name == "export"  # a live replay
    # When the owner revokes the share and the sharee replays the key
    assert api("DELETE", f"{BASE}/{session_id}/shares/{share_id}").status == 204
    replay = call(api, route, session_id, "bob")
    # Then the session is not there for them, and nothing of the stored answer comes back
    assert replay.status == 404, replay.body
    assert replay.problem["code"] == "session_not_found"
    assert "download_url" not in replay.body and "content" not in replay.body


@pytest.mark.parametrize("route", [route for route in ROUTES if route.sharee_may], ids=lambda route: route.name)
def test_a_replay_after_the_share_is_weakened_is_refused(api: Api, route: Route) -> None:
    # Given a collaborate sharee's request, then the owner re-shares with view only
    session_id, _ = shared_session(api)
    assert call(api, route, session_id, "bob").status == 201
    reshared = api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    assert reshared.status == 201, reshared.body
    # When the sharee replays, Then their view access does not allow the action any more
    replay = call(api, route, session_id, "bob")
    assert replay.status == 403, replay.body
    assert replay.problem["code"] == "session_not_accessible"


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_a_replay_after_the_session_is_deleted_finds_nothing(api: Api, route: Route) -> None:
    # Given the owner's request under a key
    session_id = api.create_session(user="alice")["session_id"]
    assert call(api, route, session_id, "alice").status == 201
    # When the session is deleted and the key replayed
    assert api("DELETE", f"{BASE}/{session_id}").status == 204
    replay = call(api, route, session_id, "alice")
    # Then it answers like any request on a deleted session
    assert replay.status == 404, replay.body
    assert replay.problem["code"] == "session_not_found"


def test_a_create_replay_after_the_session_is_deleted_finds_nothing(api: Api) -> None:
    headers = {"Idempotency-Key": "create-once"}
    created = api("POST", BASE, body={"title": "Mine", "prompt": "private words"}, headers=headers)
    assert created.status == 201
    assert api("POST", BASE, body={"title": "Mine", "prompt": "private words"}, headers=headers).body == created.body
    assert api("DELETE", f"{BASE}/{created.body['session_id']}").status == 204
    replay = api("POST", BASE, body={"title": "Mine", "prompt": "private words"}, headers=headers)
    assert replay.status == 404, replay.body
    assert "private words" not in str(replay.body)


def test_a_deleted_sessions_idempotency_records_are_purged_with_it(api: Api) -> None:
    table_name = get_settings().table_name
    # Given a session created under a key (with a prompt), and a request under a key on every route
    created = api("POST", BASE, body={"prompt": "private words"}, headers={"Idempotency-Key": "create-k"})
    session_id = created.body["session_id"]
    for route in ROUTES:
        assert call(api, route, session_id, "alice", key=f"{route.name}-k").status == 201
    # and another session's records, which must stay
    kept = api("POST", BASE, body={"title": "kept"}, headers={"Idempotency-Key": "kept-k"}).body["session_id"]
    assert call(api, ROUTES[0], kept, "alice", key="kept-append").status == 201
    before = idempotency_items(table_name)
    assert any("private words" in str(item) for item in before), "the create's record holds the prompt"
    # When the session is deleted and purged
    assert api("DELETE", f"{BASE}/{session_id}").status == 204
    purge()
    # Then no record of it is left, holding its content, and the other session's records are untouched
    after = idempotency_items(table_name)
    assert not any("private words" in str(item) or session_id in str(item) for item in after), after
    assert len([item for item in after if kept in str(item)]) == 3  # the append's record, the create's and its pointer
    assert api("POST", BASE, body={"title": "kept"}, headers={"Idempotency-Key": "kept-k"}).body["session_id"] == kept


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "line\nbreak", "nul\x00", "café"])
def test_a_malformed_key_is_refused_on_every_route_before_anything_is_stored(api: Api, key: str) -> None:
    session_id = api.create_session(user="alice")["session_id"]
    before = sorted(str(item) for item in boto3.resource("dynamodb").Table(get_settings().table_name).scan()["Items"])
    paths = [(BASE, {"title": "x"}), *((f"{BASE}/{session_id}{route.path}", route.body) for route in ROUTES)]
    for path, body in paths:
        result = api("POST", path, body=body, headers={"Idempotency-Key": key})
        assert result.status == 422, (path, result.body)
        assert result.problem["errors"][0]["field"].lower().endswith("idempotency-key"), result.problem
    after = sorted(str(item) for item in boto3.resource("dynamodb").Table(get_settings().table_name).scan()["Items"])
    assert after == before


@pytest.mark.parametrize("key", ["k", "k" * 255, "550e8400-e29b-41d4-a716-446655440000", "a b ~!"])
def test_a_well_formed_key_at_the_length_limits_is_taken(api: Api, key: str) -> None:
    first = api("POST", BASE, body={"title": "x"}, headers={"Idempotency-Key": key})
    again = api("POST", BASE, body={"title": "x"}, headers={"Idempotency-Key": key})
    assert first.status == 201 and again.body == first.body
