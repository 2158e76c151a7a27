"""The messages endpoints, in-process with moto: Given / When / Then."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from sessions_api import timeutil
from sessions_api.dal import items, session_writes
from sessions_api.dal.sessions_repo import WriteRefused
from sessions_api.logic import policy
from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"
EURO = "€"  # three bytes in UTF-8


def messages_path(session_id: str) -> str:
    return f"{BASE}/{session_id}/messages"


def append(api: Api, session_id: str, body: dict[str, Any], user: str = "alice", **kwargs: Any) -> Any:
    result = api("POST", messages_path(session_id), body=body, user=user, **kwargs)
    assert result.status == 201, result.body
    return result.body


def batch(api: Api, session_id: str, contents: list[str], role: str = "user") -> list[dict[str, Any]]:
    body = {"messages": [{"role": role, "content": content} for content in contents]}
    return append(api, session_id, body)["messages"]


def read_all(api: Api, session_id: str, *, order: str = "asc", limit: int = 500) -> list[dict[str, Any]]:
    seen, cursor = [], None
    while True:
        query = {"limit": str(limit), "order": order, **({"cursor": cursor} if cursor else {})}
        result = api("GET", messages_path(session_id), query=query)
        assert result.status == 200, result.body
        seen += result.body["messages"]
        if not result.body["has_more"]:
            assert result.body["next_cursor"] is None
            return seen
        cursor = result.body["next_cursor"]


def session_item(table: Any, session_id: str) -> dict[str, Any]:
    return table.get_item(Key={"PK": f"SESSION#{session_id}", "SK": "#SESSION"})["Item"]


def set_status(table: Any, session_id: str, status: str) -> None:
    table.update_item(
        Key={"PK": f"SESSION#{session_id}", "SK": "#SESSION"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": status},
    )


def share(table: Any, session_id: str, user: str, permission: str) -> None:
    table.put_item(
        Item={
            "PK": f"SESSION#{session_id}",
            "SK": f"SHARE#USER#{user}",
            "type": "share",
            "permission": permission,
            "session_id": session_id,
        }
    )


# -- append ---------------------------------------------------------------------------------------


def test_append_one_message_counts_it_on_the_session(api: Api) -> None:
    # Given a session
    session = api.create_session()
    sid = session["session_id"]
    # When a message is appended
    result = api("POST", messages_path(sid), body={"role": "user", "content": "Hello there", "token_count": 3})
    # Then it is 201 with the message and where it lives
    assert result.status == 201
    message = result.body
    assert message["message_id"].startswith("msg_") and message["session_id"] == sid
    assert (message["role"], message["content"], message["token_count"], message["is_error"]) == (
        "user",
        "Hello there",
        3,
        False,
    )
    assert result.headers["Location"] == f"{messages_path(sid)}/{message['message_id']}"
    # And the session counts it, shows its preview and moved up in the owner's listing
    after = api("GET", f"{BASE}/{sid}").body
    assert after["message_count"] == 1 and after["turn_count"] == 1
    assert after["token_usage"]["input_tokens"] == 3
    assert after["last_message_preview"] == "Hello there"
    assert after["last_activity_at"] == message["created_at"] and after["version"] == 2


def test_a_batch_is_appended_atomically_in_order(api: Api) -> None:
    sid = api.create_session()["session_id"]
    body = {
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hi", "token_count": 2},
            {
                "role": "assistant",
                "content": "Hello!",
                "model_id": "amazon.nova-lite-v1:0",
                "agent_name": "chat",
                "token_count": 5,
                "response_time_ms": 420,
            },
            {"role": "assistant", "content": "x" * 150, "is_error": True},
        ]
    }
    stored = append(api, sid, body)["messages"]
    assert [m["role"] for m in stored] == ["system", "user", "assistant", "assistant"]
    assert [m["message_id"] for m in stored] == sorted(m["message_id"] for m in stored)
    assert stored[2]["model_id"] == "amazon.nova-lite-v1:0" and stored[2]["response_time_ms"] == 420
    assert read_all(api, sid) == stored
    session = api("GET", f"{BASE}/{sid}").body
    assert session["message_count"] == 4 and session["turn_count"] == 1
    assert session["token_usage"] == {"input_tokens": 2, "output_tokens": 5, "total_tokens": 7, "cost_usd": 0.0}
    assert session["last_message_preview"] == "x" * 99 + "…"
    metrics = api("GET", f"{BASE}/{sid}/metrics")
    if metrics.status == 200:  # the lifecycle group reads the same counters
        assert metrics.body["error_count"] == 1


def test_an_append_is_one_request_whatever_the_history(api: Api, ddb_calls: list[str]) -> None:
    sid = api.create_session()["session_id"]
    for start in range(0, 300, 25):
        batch(api, sid, [f"m{i}" for i in range(start, start + 25)])
    ddb_calls.clear()
    append(api, sid, {"role": "user", "content": "one more"})
    assert ddb_calls == ["TransactWriteItems"]
    ddb_calls.clear()
    batch(api, sid, ["a", "b"])
    assert ddb_calls == ["TransactWriteItems"]


def test_idempotency_key_replays_the_first_append(api: Api) -> None:
    sid = api.create_session()["session_id"]
    headers = {"Idempotency-Key": "append-1"}
    first = append(api, sid, {"role": "user", "content": "once"}, headers=headers)
    for _ in range(3):
        assert append(api, sid, {"role": "user", "content": "once"}, headers=headers) == first
    assert [m["message_id"] for m in read_all(api, sid)] == [first["message_id"]]
    assert api("GET", f"{BASE}/{sid}").body["message_count"] == 1
    different = api("POST", messages_path(sid), body={"role": "user", "content": "other"}, headers=headers)
    assert different.status == 409 and different.problem["code"] == "conflict"
    # The same key on another session is another request
    other = api.create_session()["session_id"]
    assert append(api, other, {"role": "user", "content": "once"}, headers=headers)["session_id"] == other


BAD_APPENDS: list[tuple[str, Any, int, str]] = [
    ("bad role", {"role": "tool", "content": "x"}, 422, "validation_error"),
    ("empty content", {"role": "user", "content": ""}, 422, "validation_error"),
    ("missing content", {"role": "user"}, 422, "validation_error"),
    ("over-long content", {"role": "user", "content": "x" * 100_001}, 422, "validation_error"),
    ("control characters", {"role": "user", "content": "a\x00b"}, 422, "validation_error"),
    ("negative tokens", {"role": "user", "content": "x", "token_count": -1}, 422, "validation_error"),
    ("server-owned id", {"role": "user", "content": "x", "message_id": "msg_1"}, 422, "validation_error"),
    ("server-owned created_at", {"role": "user", "content": "x", "created_at": "2020-01-01"}, 422, "validation_error"),
    ("batch over 25", {"messages": [{"role": "user", "content": "x"}] * 26}, 422, "validation_error"),
    ("empty batch", {"messages": []}, 422, "validation_error"),
    (
        "batch with one bad",
        {"messages": [{"role": "user", "content": "ok"}, {"role": "x", "content": "y"}]},
        422,
        "validation_error",
    ),
    ("malformed json", "{nope", 400, "bad_request"),
    ("body over 1 MiB", {"role": "user", "content": "x" * (1024 * 1024 + 1)}, 413, "payload_too_large"),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), BAD_APPENDS, ids=[c[0] for c in BAD_APPENDS])
def test_bad_appends_are_refused_with_nothing_written(
    api: Api, table: Any, case: str, body: Any, status: int, code: str
) -> None:
    sid = api.create_session()["session_id"]
    before = all_items(table)
    result = api("POST", messages_path(sid), body=body)
    assert result.status == status, result.body
    assert result.problem["code"] == code
    assert all_items(table) == before


def test_a_batch_error_names_the_bad_field(api: Api) -> None:
    sid = api.create_session()["session_id"]
    body = {"messages": [{"role": "user", "content": "ok"}, {"role": "robot", "content": "y"}]}
    errors = api("POST", messages_path(sid), body=body).problem["errors"]
    assert [error["field"] for error in errors] == ["body.batch.messages.1.role"]


@pytest.mark.parametrize(
    ("status", "code"), [("expired", "session_expired"), ("completed", "conflict"), ("paused", "conflict")]
)
def test_a_session_not_open_for_messages_refuses_them(api: Api, table: Any, status: str, code: str) -> None:
    sid = api.create_session()["session_id"]
    set_status(table, sid, status)
    before = all_items(table)
    result = api("POST", messages_path(sid), body={"role": "user", "content": "late"})
    assert result.status == 409 and result.problem["code"] == code
    assert status in result.problem["detail"]
    assert all_items(table) == before


def test_a_large_message_for_a_closed_session_leaves_nothing_in_s3(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    set_status(table, sid, "completed")
    result = api("POST", messages_path(sid), body={"role": "user", "content": "x" * 70_000})
    assert result.status == 409 and result.problem["code"] == "conflict"
    assert boto3.client("s3").list_objects_v2(Bucket=_bucket(), Prefix=f"sessions/alice/{sid}/").get("KeyCount") == 0


def test_a_running_session_takes_messages(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    set_status(table, sid, "running")
    append(api, sid, {"role": "assistant", "content": "working on it"})


# -- large contents -------------------------------------------------------------------------------


def test_a_300_kb_message_round_trips_through_s3(api: Api, table: Any) -> None:
    # Given a session, when a 300 KB message (100,000 three-byte characters) is appended
    sid = api.create_session()["session_id"]
    content = EURO * 100_000
    assert len(content.encode()) == 300_000
    stored = append(api, sid, {"role": "user", "content": content})
    assert stored["content"] == content
    mid = stored["message_id"]
    # Then its item holds a reference, and the content sits in S3 under the owner's session prefix
    item = table.get_item(Key={"PK": f"SESSION#{sid}", "SK": f"MSG#{mid}"})["Item"]
    assert "content" not in item and item["content_bytes"] == 300_000
    key = f"sessions/alice/{sid}/payloads/{mid}.json"
    assert item["payload_key"] == key
    body = boto3.client("s3").get_object(Bucket=_bucket(), Key=key)["Body"].read()
    assert json.loads(body)["content"] == content
    # And every read returns the content as if nothing were different
    assert api("GET", f"{messages_path(sid)}/{mid}").body["content"] == content
    assert read_all(api, sid)[0]["content"] == content
    embedded = api("GET", f"{BASE}/{sid}", query={"include": "messages"}).body["messages"]
    assert embedded[0]["content"] == content
    assert api("GET", f"{BASE}/{sid}").body["last_message_preview"] == EURO * 99 + "…"


def test_a_sharee_with_edit_stores_large_content_under_the_owners_prefix(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    share(table, sid, "bob", "edit")
    stored = append(api, sid, {"role": "user", "content": "b" * 70_000}, user="bob")
    item = table.get_item(Key={"PK": f"SESSION#{sid}", "SK": f"MSG#{stored['message_id']}"})["Item"]
    assert item["payload_key"].startswith(f"sessions/alice/{sid}/payloads/")
    assert api("GET", f"{messages_path(sid)}/{stored['message_id']}", user="bob").body["content"] == "b" * 70_000
    share(table, sid, "carol", "view")
    refused = api("POST", messages_path(sid), body={"role": "user", "content": "hi"}, user="carol")
    assert refused.status == 403 and refused.problem["code"] == "session_not_accessible"
    assert api("GET", messages_path(sid), user="carol").status == 200


def _bucket() -> str:
    import os

    return os.environ["BUCKET_NAME"]


# -- list -----------------------------------------------------------------------------------------


def test_thousands_of_messages_page_in_both_orders_without_gaps_or_duplicates(api: Api, table: Any) -> None:
    # Given a session with 2,050 messages: 50 appended through the API, then 2,000 written straight to
    # the table (moto copies the whole table for every transaction, which makes thousands of appends slow)
    from sessions_api.dal import items
    from sessions_api.dal.messages_repo import MessagesRepo

    sid = api.create_session()["session_id"]
    written = [
        m["message_id"] for start in (0, 25) for m in batch(api, sid, [f"m{i}" for i in range(start, start + 25)])
    ]
    seeded = [
        items.new_message(sid, role="user", content=f"m{i}", at="2026-01-01T00:00:00.000Z") for i in range(50, 2050)
    ]
    with table.batch_writer() as writer:
        for item in seeded:
            writer.put_item(Item=MessagesRepo.offload([item], owner=None)[0])
    written += [item["message_id"] for item in seeded]
    assert written == sorted(written) and len(set(written)) == 2050
    # When a client pages through oldest first, then newest first, with different page sizes
    ascending = read_all(api, sid, order="asc", limit=500)
    descending = read_all(api, sid, order="desc", limit=333)
    # Then each sees every message exactly once, in order
    assert [m["message_id"] for m in ascending] == written
    assert [m["message_id"] for m in descending] == written[::-1]
    assert [m["content"] for m in ascending] == [f"m{i}" for i in range(2050)]


def test_the_default_page_is_100_oldest_first(api: Api) -> None:
    sid = api.create_session()["session_id"]
    for start in range(0, 125, 25):
        batch(api, sid, [f"m{i}" for i in range(start, start + 25)])
    page = api("GET", messages_path(sid)).body
    assert len(page["messages"]) == 100 and page["has_more"] is True
    assert page["messages"][0]["content"] == "m0"
    rest = api("GET", messages_path(sid), query={"cursor": page["next_cursor"]}).body
    assert [m["content"] for m in rest["messages"]] == [f"m{i}" for i in range(100, 125)]
    assert rest == {**rest, "has_more": False, "next_cursor": None}


def test_a_page_of_large_messages_stops_early_but_loses_nothing(api: Api) -> None:
    # 60 messages of 60 KB: a page of 100 would outgrow a Lambda response
    sid = api.create_session()["session_id"]
    written = []
    for start in range(0, 60, 15):
        written += [
            m["message_id"] for m in batch(api, sid, [chr(65 + i % 26) * 60_000 for i in range(start, start + 15)])
        ]
    first = api("GET", messages_path(sid), query={"limit": "100"})
    assert first.status == 200
    assert len(json.dumps(first.body)) < 6_000_000
    assert first.body["has_more"] is True and 0 < len(first.body["messages"]) < 60
    assert [m["message_id"] for m in read_all(api, sid, limit=100)] == written


def test_an_empty_session_has_an_empty_page(api: Api) -> None:
    sid = api.create_session()["session_id"]
    assert api("GET", messages_path(sid)).body == {"messages": [], "next_cursor": None, "has_more": False}


def test_cursors_are_bound_to_caller_session_and_order(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    other = api.create_session()["session_id"]
    batch(api, sid, ["a", "b", "c"])
    batch(api, other, ["a", "b", "c"])
    cursor = api("GET", messages_path(sid), query={"limit": "1"}).body["next_cursor"]
    share(table, sid, "bob", "view")
    for path, query, user in [
        (messages_path(sid), {"cursor": cursor, "order": "desc"}, "alice"),
        (messages_path(other), {"cursor": cursor}, "alice"),
        (messages_path(sid), {"cursor": cursor}, "bob"),
        (messages_path(sid), {"cursor": cursor[:-3] + "AAA"}, "alice"),
        (messages_path(sid), {"cursor": "garbage"}, "alice"),
    ]:
        result = api("GET", path, query=query, user=user)
        assert result.status == 400 and result.problem["code"] == "bad_request", (path, query, user)


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "501"}, {"order": "sideways"}])
def test_bad_list_parameters_are_422(api: Api, query: dict[str, str]) -> None:
    sid = api.create_session()["session_id"]
    assert api("GET", messages_path(sid), query=query).problem["code"] == "validation_error"


# -- one message ----------------------------------------------------------------------------------


def test_get_one_and_a_missing_one(api: Api) -> None:
    sid = api.create_session()["session_id"]
    stored = append(api, sid, {"role": "user", "content": "find me"})
    assert api("GET", f"{messages_path(sid)}/{stored['message_id']}").body == stored
    missing = api("GET", f"{messages_path(sid)}/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert missing.status == 404 and missing.problem["code"] == "message_not_found"
    assert api("GET", f"{messages_path(sid)}/whatever").problem["code"] == "message_not_found"
    # A message id of another session is not found in this one
    other = api.create_session()["session_id"]
    assert api("GET", f"{messages_path(other)}/{stored['message_id']}").status == 404


def test_deleting_a_message_keeps_the_counters_exact(api: Api) -> None:
    # Given a conversation
    sid = api.create_session()["session_id"]
    stored = append(
        api,
        sid,
        {
            "messages": [
                {"role": "user", "content": "first", "token_count": 4},
                {"role": "assistant", "content": "oops", "token_count": 9, "is_error": True},
                {"role": "user", "content": "second", "token_count": 6},
                {"role": "assistant", "content": "answer", "token_count": 11},
            ]
        },
    )["messages"]
    # When a message in the middle is deleted
    assert api("DELETE", f"{messages_path(sid)}/{stored[1]['message_id']}").status == 204
    # Then it is gone and the counters no longer count it; the preview (of the newest) stays
    assert [m["message_id"] for m in read_all(api, sid)] == [
        stored[0]["message_id"],
        *(m["message_id"] for m in stored[2:]),
    ]
    session = api("GET", f"{BASE}/{sid}").body
    assert session["message_count"] == 3 and session["turn_count"] == 2
    assert session["token_usage"]["input_tokens"] == 10 and session["token_usage"]["output_tokens"] == 11
    assert session["last_message_preview"] == "answer"
    # When the newest is deleted, the preview becomes the next newest's
    assert api("DELETE", f"{messages_path(sid)}/{stored[3]['message_id']}").status == 204
    session = api("GET", f"{BASE}/{sid}").body
    assert session["last_message_preview"] == "second" and session["message_count"] == 2
    assert session["token_usage"]["output_tokens"] == 0
    # And a user message takes its turn with it
    assert api("DELETE", f"{messages_path(sid)}/{stored[2]['message_id']}").status == 204
    assert api("DELETE", f"{messages_path(sid)}/{stored[0]['message_id']}").status == 204
    session = api("GET", f"{BASE}/{sid}").body
    assert (session["message_count"], session["turn_count"], session["last_message_preview"]) == (0, 0, None)
    assert session["token_usage"]["input_tokens"] == 0
    # Deleting again is 404, and changes nothing
    again = api("DELETE", f"{messages_path(sid)}/{stored[0]['message_id']}")
    assert again.status == 404 and again.problem["code"] == "message_not_found"
    assert api("GET", f"{BASE}/{sid}").body["message_count"] == 0


def test_deleting_the_newest_large_message_uses_the_previous_preview(api: Api) -> None:
    sid = api.create_session()["session_id"]
    large = append(api, sid, {"role": "user", "content": "L" * 70_000})
    newest = append(api, sid, {"role": "assistant", "content": "short"})
    assert api("DELETE", f"{messages_path(sid)}/{newest['message_id']}").status == 204
    assert api("GET", f"{BASE}/{sid}").body["last_message_preview"] == "L" * 99 + "…"
    assert api("GET", f"{messages_path(sid)}/{large['message_id']}").body["content"] == "L" * 70_000


def overtaking(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], Any]) -> list[session_writes.SessionWrite]:
    """Every plan a session write commits; `meanwhile()` runs just before the first, as a write whose ids were
    made later but that lands first."""
    real = session_writes._transact
    seen: list[session_writes.SessionWrite] = []

    def transact(write: session_writes.SessionWrite, writer: session_writes.Writer) -> None:
        seen.append(write)
        if len(seen) == 1:
            meanwhile()
        real(write, writer)

    monkeypatch.setattr(session_writes, "_transact", transact)
    return seen


@pytest.mark.parametrize("writer", ["alice", "bob"])
def test_an_append_overtaken_by_a_newer_one_leaves_it_the_preview(
    api: Api, table: Any, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    # Given a session (bob edits it through a share)
    sid = api.create_session()["session_id"]
    share(table, sid, "bob", "edit")
    newer: dict[str, Any] = {}
    # When an append whose id is older lands after one whose id is newer (two concurrent requests)
    seen = overtaking(monkeypatch, lambda: newer.update(append(api, sid, {"role": "assistant", "content": "néwer"})))
    older = append(api, sid, {"role": "user", "content": "ölder"}, user=writer)
    # Then both are stored in id order, the counters count both, and the preview stays the newest's
    assert older["message_id"] < newer["message_id"]
    assert [m["content"] for m in read_all(api, sid)] == ["ölder", "néwer"]
    session = api("GET", f"{BASE}/{sid}").body
    assert (session["message_count"], session["turn_count"], session["version"]) == (2, 1, 3)
    assert session["last_message_preview"] == "néwer"
    stored = next(item for item in all_items(table) if item["SK"] == "#SESSION")
    assert stored["last_message_id"] == newer["message_id"]
    # (the overtaken append took its `behind` plan: one transaction more, the preview left alone)
    assert seen[-1].expects.newest_after == older["message_id"]
    assert "last_message_preview" not in json.dumps(seen[-1].update.params())
    if writer == "bob":  # a sharee's write is signed in either plan: their erasure will find it
        pointers = [item for item in all_items(table) if item["SK"].startswith(f"AUTHORED#{sid}#")]
        assert [item["PK"] for item in pointers] == ["USER#bob"]
    # And deleting the newest gives the preview back to the older one
    assert api("DELETE", f"{messages_path(sid)}/{newer['message_id']}").status == 204
    assert api("GET", f"{BASE}/{sid}").body["last_message_preview"] == "ölder"


def test_an_overtaken_append_whose_newer_message_is_deleted_meanwhile_is_refused_whole(
    api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an append planned (its id made) before another one that has landed
    sid = api.create_session()["session_id"]
    moment = timeutil.now()
    old = items.new_message(sid, role="user", content="ölder", at=timeutil.iso(moment))
    late = session_writes.append_messages(
        sid, [old], items.messages_added(sid, "alice", timeutil.iso(moment), [old]), moment=moment
    )
    newest = append(api, sid, {"role": "user", "content": "newest"})
    # When the newer message is deleted between the append's two plans
    real = session_writes._transact
    calls: list[session_writes.SessionWrite] = []

    def transact(write: session_writes.SessionWrite, writer: session_writes.Writer) -> None:
        calls.append(write)
        try:
            real(write, writer)
        finally:
            if len(calls) == 1:
                assert api("DELETE", f"{messages_path(sid)}/{newest['message_id']}").status == 204

    monkeypatch.setattr(session_writes, "_transact", transact)
    with pytest.raises(WriteRefused) as refused:
        session_writes.commit(late, session_writes.Writer("alice", caller="alice"))
    # Then both plans were refused, the refusal says to plan it again, and nothing of it is stored
    assert [write for write in calls if write in (late, late.behind)] == [late, late.behind]
    assert isinstance(policy.refusal(sid, refused.value, late.expects), policy.Moved)
    assert not [item for item in all_items(table) if old["message_id"] in json.dumps(item, default=str)]
    session = api("GET", f"{BASE}/{sid}").body
    assert (session["message_count"], session["version"], session["last_message_preview"]) == (0, 3, None)


def test_deleting_the_newest_while_an_overtaken_append_lands_gives_the_preview_to_that_one(
    api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Z, then an append of Y planned (its id made), then X, the newest
    sid = api.create_session()["session_id"]
    append(api, sid, {"role": "user", "content": "zed"})
    moment = timeutil.now()
    middle = items.new_message(sid, role="user", content="why", at=timeutil.iso(moment))
    late = session_writes.append_messages(
        sid, [middle], items.messages_added(sid, "alice", timeutil.iso(moment), [middle]), moment=moment
    )
    newest = append(api, sid, {"role": "assistant", "content": "ex"})

    # When X is deleted, and Y lands (behind X, leaving last_message_id alone) after the delete has read its successor
    def landing() -> None:
        monkeypatch.undo()
        session_writes.commit(late, session_writes.Writer("alice", caller="alice"))

    overtaking(monkeypatch, landing)
    assert api("DELETE", f"{messages_path(sid)}/{newest['message_id']}").status == 204
    # Then the preview is Y's, the newest left, not Z's
    assert [m["content"] for m in read_all(api, sid)] == ["zed", "why"]
    session = api("GET", f"{BASE}/{sid}").body
    assert (session["message_count"], session["last_message_preview"]) == (2, "why")
    stored = next(item for item in all_items(table) if item["SK"] == "#SESSION")
    assert stored["last_message_id"] == middle["message_id"]


def test_an_expired_sessions_messages_cannot_be_deleted(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    stored = append(api, sid, {"role": "user", "content": "keep"})
    set_status(table, sid, "expired")
    result = api("DELETE", f"{messages_path(sid)}/{stored['message_id']}")
    assert result.status == 409 and result.problem["code"] == "session_expired"
    assert api("GET", f"{messages_path(sid)}/{stored['message_id']}").status == 200


def test_a_view_sharee_reads_but_cannot_delete(api: Api, table: Any) -> None:
    sid = api.create_session()["session_id"]
    stored = append(api, sid, {"role": "user", "content": "keep"})
    share(table, sid, "bob", "view")
    assert api("GET", f"{messages_path(sid)}/{stored['message_id']}", user="bob").status == 200
    refused = api("DELETE", f"{messages_path(sid)}/{stored['message_id']}", user="bob")
    assert refused.status == 403
    share(table, sid, "carol", "edit")
    assert api("DELETE", f"{messages_path(sid)}/{stored['message_id']}", user="carol").status == 204
    assert api("GET", f"{BASE}/{sid}").body["message_count"] == 0


# -- access ---------------------------------------------------------------------------------------


def test_a_foreign_session_is_404_on_every_route(api: Api, table: Any) -> None:
    sid = api.create_session(user="bob", prompt="bob's secret")["session_id"]
    stored = append(api, sid, {"role": "user", "content": "another secret"}, user="bob")
    before = all_items(table)
    one = f"{messages_path(sid)}/{stored['message_id']}"
    for method, path, kwargs in [
        ("POST", messages_path(sid), {"body": {"role": "user", "content": "hi"}}),
        ("POST", messages_path(sid), {"body": {"role": "user", "content": "x" * 70_000}}),
        ("POST", messages_path(sid), {"body": {"messages": [{"role": "user", "content": "hi"}]}}),
        ("GET", messages_path(sid), {}),
        ("GET", one, {}),
        ("DELETE", one, {}),
        ("POST", f"{BASE}/{sid}/chat", {"body": {"message": "hi"}}),
        ("POST", "/api/v1/chat", {"body": {"message": "hi", "session_id": sid}}),
    ]:
        result = api(method, path, **kwargs)
        assert result.status == 404, (method, path, result.body)
        assert result.problem["code"] == "session_not_found"
        assert "secret" not in json.dumps(result.body)
    assert all_items(table) == before
    # A deleted session's messages are gone too
    api("DELETE", f"{BASE}/{sid}", user="bob")
    assert api("GET", messages_path(sid), user="bob").status == 404
    assert api("GET", one, user="bob").status == 404


def test_a_missing_or_malformed_session_is_404(api: Api) -> None:
    for sid in ("session_0123456789abcdef", "not-a-session"):
        assert api("GET", messages_path(sid)).problem["code"] == "session_not_found"
        assert api("POST", messages_path(sid), body={"role": "user", "content": "x"}).problem["code"] == (
            "session_not_found"
        )


def test_unsupported_methods_are_405(api: Api) -> None:
    sid = api.create_session()["session_id"]
    result = api("PUT", messages_path(sid), body={})
    assert result.status == 405 and result.headers["Allow"] == "GET, POST"
