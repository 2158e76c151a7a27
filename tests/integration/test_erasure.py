"""Erase everything (DELETE /me): gone from every read at once, then purged by the worker, with a receipt.

In-process with moto: the request through the API, the worker as its stream mapping would call it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from sessions_api import timeutil
from sessions_api.dal import keys
from sessions_api.logic.erasing import Eraser
from sessions_api.settings import get_settings
from tests.conftest import all_items
from tests.support import Api, LambdaContext, load_function

BASE = "/api/v1/sessions"
PLENTY: Callable[[], int] = lambda: 600_000  # noqa: E731
EURO = "€"


def bucket() -> str:
    return os.environ["BUCKET_NAME"]


def objects(prefix: str = "") -> list[str]:
    found = boto3.client("s3").list_object_versions(Bucket=bucket(), Prefix=prefix)
    return [entry["Key"] for entry in [*found.get("Versions", []), *found.get("DeleteMarkers", [])]]


def erasure_item(table: Any, user: str, erasure_id: str) -> dict[str, Any]:
    return table.get_item(Key=keys.erasure_key(user, erasure_id))["Item"]


def run_worker(table: Any, user: str, erasure_id: str, remaining_ms: Callable[[], int] = PLENTY) -> dict[str, Any]:
    """The erasure worker, handed the record as the stream's filter would hand it."""
    serializer = TypeSerializer()
    image = {name: serializer.serialize(value) for name, value in erasure_item(table, user, erasure_id).items()}
    context = LambdaContext(function_name="ErasureWorkerFunction")
    context.get_remaining_time_in_millis = remaining_ms  # type: ignore[method-assign]
    event = {"Records": [{"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image}}]}
    return load_function("ErasureWorkerFunction").handler(event, context)


def erase(api: Api, user: str = "alice", email: str | None = None) -> dict[str, Any]:
    result = api("DELETE", "/api/v1/me", user=user, email=email)
    assert result.status == 202, result.body
    assert result.headers["Location"] == f"/api/v1/me/erasures/{result.body['erasure_id']}"
    return result.body


def chat_reply(api: Api, session_id: str, user: str = "alice") -> None:
    result = api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "hi"}, user=user)
    assert result.status == 201, result.body


def names(item: dict[str, Any], user: str) -> bool:
    return user in json.dumps(item, default=str)


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """alice has three sessions (a large message, a deck, an export, a share to bob, a create's idempotency
    record, a finished chat run); carol shared one with alice by id and one by e-mail, and alice commented
    on it; bob has his own session, which carol commented on."""
    created = api("POST", BASE, body={"title": "Plan"}, headers={"Idempotency-Key": "make-plan"})
    assert created.status == 201
    plan = created.body["session_id"]
    notes = api.create_session(title="Notes")["session_id"]
    trip = api.create_session(title="Trip")["session_id"]
    big = api("POST", f"{BASE}/{plan}/messages", body={"role": "user", "content": EURO * 100_000})
    assert big.status == 201
    assert api("PUT", f"{BASE}/{notes}/slides", body={"slides": [{"slide_id": "s1", "html": "<h1>x</h1>"}]}).status in (
        200,
        201,
    )
    assert api("POST", f"{BASE}/{notes}/export", body={"format": "markdown"}).status == 201
    assert api("POST", f"{BASE}/{plan}/share", body={"recipients": ["bob"], "permissions": "collaborate"}).status == 201
    assert api("POST", f"{BASE}/{plan}/comments", body={"content": "mine", "comment_type": "note"}).status == 201
    assert (
        api("POST", f"{BASE}/{plan}/comments", body={"content": "bob's", "comment_type": "note"}, user="bob").status
        == 201
    )
    chat = api("POST", f"{BASE}/{trip}/chat", body={"message": "hello"})
    assert chat.status == 200, chat.body
    carols = api.create_session(user="carol", title="Carol's")["session_id"]
    assert (
        api(
            "POST",
            f"{BASE}/{carols}/share",
            body={"recipients": ["alice", "alice@example.com"], "permissions": "collaborate"},
            user="carol",
        ).status
        == 201
    )
    said = api("POST", f"{BASE}/{carols}/comments", body={"content": "a thought", "comment_type": "insight"})
    assert said.status == 201
    chat_reply(api, carols)  # as carol's collaborator: a message and its history entry
    assert api("POST", f"{BASE}/{carols}/chat", body={"message": "and you?"}).status == 200
    bobs = api.create_session(user="bob", title="Bob's")["session_id"]
    chat_reply(api, bobs, user="bob")
    return {
        "plan": plan,
        "notes": notes,
        "trip": trip,
        "carols": carols,
        "bobs": bobs,
        "comment": said.body["comment_id"],
    }


def test_at_once_every_session_is_gone_from_every_read(api: Api, table: Any, world: dict[str, Any]) -> None:
    # When alice erases everything (the worker has not run yet)
    erasure = erase(api)
    assert erasure["status"] == "running" and erasure["sessions"] == 0
    # Then her sessions are gone from her reads: listing, totals, each session, continue
    listed = api("GET", BASE).body
    assert listed["sessions"] == [] and listed["total"] == 0 and set(listed["summary"].values()) == {0}
    for name in ("plan", "notes", "trip"):
        assert api("GET", f"{BASE}/{world[name]}").status == 404
        assert api("GET", f"{BASE}/{world[name]}/messages").status == 404
    assert api("GET", f"{BASE}/continue").status == 404
    # And from her sharee's: bob no longer sees nor writes to the session she shared
    assert api("GET", f"{BASE}/{world['plan']}", user="bob").status == 404
    assert api("GET", BASE, query={"shared": "true"}, user="bob").body["sessions"] == []
    assert (
        api("POST", f"{BASE}/{world['plan']}/messages", body={"role": "user", "content": "x"}, user="bob").status == 404
    )
    # While others' sessions are untouched
    assert api("GET", f"{BASE}/{world['bobs']}", user="bob").status == 200
    assert api("GET", f"{BASE}/{world['carols']}", user="carol").status == 200


def test_the_worker_purges_everything_of_hers_and_nothing_of_anyone_else(
    api: Api, table: Any, world: dict[str, Any]
) -> None:
    hers = {keys.session_pk(world[name]) for name in ("plan", "notes", "trip")} | {keys.user_pk("alice")}
    others_before = [item for item in all_items(table) if item["PK"] not in hers and item.get("recipient") != "alice"]
    others_before = [item for item in others_before if item.get("recipient") != "alice@example.com"]
    # alice's create record (her Idempotency-Key) is hers: the only record outside a session
    assert [item["PK"] for item in others_before if item["PK"].startswith(keys.IDEMPOTENCY_PREFIX)] != []
    others_before = [item for item in others_before if not item["PK"].startswith(keys.IDEMPOTENCY_PREFIX)]
    others_objects = [key for key in objects() if not key.startswith(("sessions/alice/", "users/alice/"))]
    alice_objects = objects("sessions/alice/")
    assert len(alice_objects) >= 2  # the large message and the export
    # When alice erases everything (with her e-mail, which carol shared with) and the worker runs
    erasure = erase(api, email="alice@example.com")
    assert run_worker(table, "alice", erasure["erasure_id"]) == {"finished": 1}
    # Then a full scan finds nothing of hers but her receipt and her counters (which hold no content)
    left = [item for item in all_items(table) if names(item, "alice")]
    assert sorted(item["SK"] for item in left) == sorted(
        [keys.COUNTERS_SK, keys.ERASURE_PREFIX + erasure["erasure_id"]]
    )
    counters = next(item for item in left if item["SK"] == keys.COUNTERS_SK)
    assert "erasure_id" not in counters and not any(name.startswith("erasing_") for name in counters)
    # And no object of hers is left in the bucket, every other one is
    assert objects("sessions/alice/") == [] and objects("users/alice/") == []
    assert sorted(objects()) == sorted(others_objects)
    # And everything of the others is there as it was, but for the shares to her and her comment's name
    after = {(item["PK"], item["SK"]): item for item in all_items(table)}
    for item in others_before:
        key = (item["PK"], item["SK"])
        assert key in after, item
    assert not any(pk.startswith(keys.IDEMPOTENCY_PREFIX) for pk, _ in after)
    comment = table.get_item(Key=keys.comment_key(world["carols"], world["comment"]))["Item"]
    assert comment["author"] == "erased-user" and comment["content"] == "a thought"
    assert api("GET", f"{BASE}/{world['carols']}/comments", user="carol").body["comments"][0]["author"] == "erased-user"
    # (her comment and its entry, her message's entry, her chat's run, its two entries: six in all)
    history = api("GET", f"{BASE}/{world['carols']}/history", user="carol").body["timeline"]
    assert {"erased-user", "carol"} == {entry["actor"] for entry in history}
    shares = [item for item in after.values() if item["SK"].startswith(keys.SHARE_PREFIX)]
    assert shares == []  # carol's two shares to alice (by id, by e-mail) and alice's to bob
    # And the receipt counts what went
    receipt = api("GET", f"/api/v1/me/erasures/{erasure['erasure_id']}").body
    assert receipt["status"] == "completed" and receipt["completed_at"] >= receipt["requested_at"]
    assert receipt["sessions"] == 3 and receipt["shares_removed"] == 2 and receipt["entries_anonymised"] == 6
    assert receipt["objects_deleted"] == len(alice_objects)
    assert receipt["items_deleted"] >= 3 * 2 + 4
    stored = erasure_item(table, "alice", erasure["erasure_id"])
    days = (int(stored["ttl"]) - timeutil.epoch_seconds(timeutil.parse(receipt["completed_at"]))) / 86400
    assert round(days) == get_settings().erasure_receipt_days
    assert receipt["receipt_expires_at"] > receipt["completed_at"]


def test_sessions_made_while_the_erasure_runs_are_kept(api: Api, table: Any, world: dict[str, Any]) -> None:
    erasure = erase(api)
    # Given a session alice creates after asking, before the worker runs
    fresh = api.create_session(title="After")["session_id"]
    chat_reply(api, fresh)
    listed = api("GET", BASE).body
    assert [s["session_id"] for s in listed["sessions"]] == [fresh] and listed["total"] == 1
    # When the worker runs, then the new one is intact and still counted
    run_worker(table, "alice", erasure["erasure_id"])
    assert api("GET", f"{BASE}/{fresh}/messages").body["messages"][0]["content"] == "hi"
    listed = api("GET", BASE).body
    assert [s["session_id"] for s in listed["sessions"]] == [fresh] and listed["total"] == 1
    assert listed["summary"]["active"] == 1


def test_an_erasure_racing_a_chat_run_ends_the_run(api: Api, table: Any, no_chat_worker: None) -> None:
    session_id = api.create_session()["session_id"]
    started = api("POST", f"{BASE}/{session_id}/chat/async", body={"message": "hello"})
    assert started.status == 202, started.body
    request_id = started.body["request_id"]
    erasure = erase(api)
    assert api("GET", f"/api/v1/chat/poll/{request_id}").status == 404  # gone at once
    run_worker(table, "alice", erasure["erasure_id"])
    assert table.get_item(Key=keys.run_key(session_id, request_id)).get("Item") is None
    assert [item for item in all_items(table) if item["PK"] == keys.session_pk(session_id)] == []


def test_a_spent_invocation_hands_on_and_the_next_finishes_the_count(
    api: Api, table: Any, world: dict[str, Any]
) -> None:
    erasure = erase(api)
    calls = iter(range(1_000_000))
    # Given an invocation with time for only a few steps
    tight = lambda: 600_000 if next(calls) < 6 else 1_000  # noqa: E731
    assert run_worker(table, "alice", erasure["erasure_id"], tight) == {"finished": 0}
    handed = erasure_item(table, "alice", erasure["erasure_id"])
    assert handed["phase"] == "ready" and handed["status"] == "running"
    assert api("GET", f"/api/v1/me/erasures/{erasure['erasure_id']}").body["status"] == "running"
    # When the next invocation runs, then it finishes, and the counts add up across both
    assert run_worker(table, "alice", erasure["erasure_id"]) == {"finished": 1}
    receipt = api("GET", f"/api/v1/me/erasures/{erasure['erasure_id']}").body
    assert receipt["sessions"] == 3 and receipt["status"] == "completed"
    assert [
        item for item in all_items(table) if item["PK"].startswith("SESSION#") and item.get("created_by") == "alice"
    ] == []


def test_a_crashed_worker_is_replaced_once_its_lease_lapses(
    api: Api, table: Any, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    erasure = erase(api)
    # Given a worker that crashes after hiding the sessions, before purging them
    from sessions_api.logic import erasing as module

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("killed")

    monkeypatch.setattr(module, "purge_session", crash)
    with pytest.raises(RuntimeError):
        run_worker(table, "alice", erasure["erasure_id"])
    monkeypatch.undo()
    # Then its sessions stay hidden, and a redelivery while the lease holds does nothing
    assert api("GET", f"{BASE}/{world['plan']}").status == 404
    assert run_worker(table, "alice", erasure["erasure_id"]) == {"finished": 0}
    # When the lease lapses, the schedule re-arms it and the next worker finishes
    table.update_item(
        Key=keys.erasure_key("alice", erasure["erasure_id"]),
        UpdateExpression="SET lease_until = :past, GSI3SK = :past",
        ExpressionAttributeValues={":past": 1},
    )
    from sessions_api.logic.expiry import Expiry

    report = Expiry(get_settings()).run(PLENTY)
    assert report.erasures_rearmed == 1
    assert erasure_item(table, "alice", erasure["erasure_id"])["phase"] == "ready"
    assert run_worker(table, "alice", erasure["erasure_id"]) == {"finished": 1}
    assert objects("sessions/alice/") == []


def test_asking_again_while_it_runs_extends_the_same_erasure(api: Api, table: Any) -> None:
    first = erase(api)
    made_between = api.create_session(title="Between")["session_id"]
    second = erase(api)
    # Then it is the same erasure, its mark moved: the session made between is erased too
    assert second["erasure_id"] == first["erasure_id"] and second["requested_at"] >= first["requested_at"]
    assert api("GET", f"{BASE}/{made_between}").status == 404
    run_worker(table, "alice", first["erasure_id"])
    assert api("GET", f"/api/v1/me/erasures/{first['erasure_id']}").body["sessions"] == 1
    # And once finished, a new DELETE /me is a new erasure
    assert erase(api)["erasure_id"] != first["erasure_id"]


def test_a_receipt_is_the_callers_own_and_lapses(api: Api, table: Any) -> None:
    erasure = erase(api)
    run_worker(table, "alice", erasure["erasure_id"])
    path = f"/api/v1/me/erasures/{erasure['erasure_id']}"
    assert api("GET", path, user="bob").problem["status"] == 404
    assert api("GET", "/api/v1/me/erasures/nonsense").problem["status"] == 404
    table.update_item(
        Key=keys.erasure_key("alice", erasure["erasure_id"]),
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":past": 1},
    )
    assert api("GET", path).problem["status"] == 404


def test_erasing_a_user_with_nothing_finishes_with_an_empty_receipt(api: Api, table: Any) -> None:
    erasure = erase(api, user="dave")
    assert Eraser(get_settings()).run("dave", erasure["erasure_id"], PLENTY) is True
    receipt = api("GET", f"/api/v1/me/erasures/{erasure['erasure_id']}", user="dave").body
    assert receipt["status"] == "completed" and receipt["sessions"] == 0 and receipt["items_deleted"] == 0


def test_erasing_a_user_touches_no_user_whose_id_starts_alike(api: Api, table: Any, world: dict[str, Any]) -> None:
    # Given "ali", whose id begins alice's (and whose S3 prefix would, without its slash)
    mine = api.create_session(user="ali", title="Ali's")["session_id"]
    chat_reply(api, mine, user="ali")
    theirs = [
        item for item in all_items(table) if item.get("created_by") != "ali" and item["PK"] != keys.user_pk("ali")
    ]
    before = sorted((item["PK"], item["SK"]) for item in theirs)
    alice_objects = sorted(objects("sessions/alice/"))
    # When ali erases everything
    erasure = erase(api, user="ali")
    assert run_worker(table, "ali", erasure["erasure_id"]) == {"finished": 1}
    # Then alice's data is all there, object for object and item for item
    assert sorted(objects("sessions/alice/")) == alice_objects
    after = {(item["PK"], item["SK"]) for item in all_items(table)}
    assert [key for key in before if key not in after and not key[0].startswith(keys.session_pk(mine))] == []
    assert api("GET", f"{BASE}/{world['plan']}").status == 200
    assert api("GET", BASE).body["total"] == 3
