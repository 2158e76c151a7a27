"""A chat run's input (its message and slide context) on the run's item when small, in S3 when not: the
run's item is rewritten at every flush of its reply, and two 100,000-character fields cannot fit an item."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest

from sessions_api.dal import keys, payloads
from tests.integration.test_chat_runs import all_items_of, finished, messages_of, start
from tests.integration.test_slide_chat import deck_session, run_to_end
from tests.support import Api

BASE = "/api/v1/sessions"
EURO = "€"  # three bytes in UTF-8


def chat_raw(api: Api, session_id: str, body: dict[str, Any]) -> Any:
    """The body as a client sends it: UTF-8, not \\u escapes (six bytes a character would pass the 1 MB cap)."""
    return api("POST", f"{BASE}/{session_id}/chat/async", body=json.dumps(body, ensure_ascii=False))


def run_item(session_id: str, request_id: str) -> dict[str, Any]:
    return next(item for item in all_items_of(session_id) if item["SK"] == keys.run_key(session_id, request_id)["SK"])


def stored_object(key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=os.environ["BUCKET_NAME"], Key=key)["Body"].read()
    return dict(json.loads(body))


def item_bytes(item: dict[str, Any]) -> int:
    return len(json.dumps(item, ensure_ascii=False, default=str).encode("utf-8"))


def test_the_largest_message_and_slide_context_are_kept_in_s3_and_the_run_answers_them(api: Api) -> None:
    # Given a deck of several slides
    sid = deck_session(api)
    assert run_to_end(api, sid, "Make 3 slides about tides")["status"] == "completed"
    # When a chat sends the largest message and slide context, multibyte (≈ 600 KB: no item could hold both)
    message = EURO * 100_000
    context = {"indices": [1], "slide_htmls": [f"<h2>{EURO * 99_990}</h2>"]}
    accepted = chat_raw(api, sid, {"message": message, "slide_context": context})
    # Then it is accepted, and the run's item holds a key, not the input
    assert accepted.status == 202, accepted.body
    request_id = accepted.body["request_id"]
    item = run_item(sid, request_id)
    assert "message" not in item and "slide_context" not in item and item_bytes(item) < 2048
    owner_prefix = keys.s3_session_prefix("alice", sid)
    assert item["input_key"] == f"{owner_prefix}payloads/{request_id}.json"
    assert stored_object(item["input_key"]) == {"message": message, "slide_context": context}
    # And the run completes, its user message whole, the model having been given all of it
    run = finished(api, request_id)
    assert run["status"] == "completed", run
    stored = messages_of(api, sid)
    user = next(m for m in stored if m["request_id"] == request_id and m["role"] == "user")
    assert api("GET", f"{BASE}/{sid}/messages/{user['message_id']}").body["content"] == message
    reply = next(m for m in stored if m["request_id"] == request_id and m["role"] == "assistant")
    assert reply["content"] and not reply["is_error"]
    # And the item stayed small while the reply was written (its flushes rewrite it)
    assert item_bytes(run_item(sid, request_id)) < 4096


def test_a_waiting_run_with_a_large_message_asks_it_when_its_turn_comes(api: Api) -> None:
    # Given a session with a chat running
    sid = api.create_session(title="queue")["session_id"]
    first = start(api, sid, "first [stream 2000]").body["request_id"]
    # When a chat with a large message waits for the turn
    message = "é" * 30_000 + " [stream 5]"
    queued = api("POST", f"{BASE}/{sid}/chat/async", body=json.dumps({"message": message, "if_busy": "enqueue"}))
    assert queued.status == 202, queued.body
    request_id = queued.body["request_id"]
    waiting = run_item(sid, request_id)
    assert waiting["phase"] == "waiting" and "message" not in waiting and "input_key" in waiting
    # Then once the first ends, its user message is the whole input read back, and the model answered it
    assert finished(api, first)["status"] == "completed"
    assert finished(api, request_id)["status"] == "completed"
    users = [m for m in messages_of(api, sid) if m["role"] == "user"]
    assert [m["request_id"] for m in users] == [first, request_id]
    assert users[1]["content"] == message
    reply = [m for m in messages_of(api, sid) if m["role"] == "assistant"][-1]
    assert reply["content"].startswith("Echo: " + "é" * 100) and "word5" in reply["content"]


@pytest.mark.parametrize(("extra", "inline"), [(-1, True), (0, True), (1, False)])
def test_an_input_is_inline_up_to_the_limit_and_in_s3_past_it(api: Api, extra: int, inline: bool) -> None:
    # Given a message whose stored input is the limit's size, give or take a byte (two-byte characters)
    sid = api.create_session()["session_id"]
    overhead = len(json.dumps({"message": "", "slide_context": None}).encode("utf-8"))
    room = payloads.RUN_INPUT_INLINE_BYTES - overhead + extra
    message = "é" * (room // 2) + "x" * (room % 2)
    # When the chat is accepted
    accepted = chat_raw(api, sid, {"message": message})
    assert accepted.status == 202, accepted.body
    item = run_item(sid, accepted.body["request_id"])
    # Then the input is on the item up to the limit and in S3 past it, whole either way
    if inline:
        assert item["message"] == message and "input_key" not in item
    else:
        assert "message" not in item and stored_object(item["input_key"])["message"] == message
    finished(api, accepted.body["request_id"])


def test_a_large_chat_refused_busy_leaves_nothing_in_s3(api: Api) -> None:
    # Given a session with a chat running
    sid = api.create_session()["session_id"]
    running = start(api, sid, "first [stream 300]").body["request_id"]
    # When a chat with a large input is refused because the session is busy
    refused = chat_raw(api, sid, {"message": EURO * 5_000})
    # Then nothing of it is stored, in the table or in S3
    assert refused.status == 409 and refused.body["code"] == "session_busy"
    stored = all_items_of(sid)
    assert [item["request_id"] for item in stored if item["type"] == "run"] == [running]
    assert not [item for item in stored if EURO in json.dumps(item, ensure_ascii=False, default=str)]
    listed = boto3.client("s3").list_objects_v2(
        Bucket=os.environ["BUCKET_NAME"], Prefix=f"{keys.s3_session_prefix('alice', sid)}payloads/run_"
    )
    assert listed.get("KeyCount", 0) == 0
    finished(api, running)
