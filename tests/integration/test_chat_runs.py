"""Chat runs, in-process with moto: accepted by the messages function, run by the chat worker the table's
stream feeds (tests/support.start_chat_worker), read by polling, streaming and the runs list."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"


def start(api: Api, session_id: str, message: str, user: str = "alice", **body: Any) -> Any:
    return api("POST", f"{BASE}/{session_id}/chat/async", body={"message": message, **body}, user=user)


def poll(api: Api, request_id: str, after: int = 0, wait: float = 0, user: str = "alice") -> Any:
    query = {"after_message_id": str(after), "wait": str(wait)}
    return api("GET", f"/api/v1/chat/poll/{request_id}", query=query, user=user)


def finished(api: Api, request_id: str, user: str = "alice", seconds: float = 20) -> dict[str, Any]:
    """Poll until the run ends; every event seen, in order, with the final view."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = poll(api, request_id, after=len(events), wait=2, user=user)
        assert view.status == 200, view.body
        events += view.body["events"]
        if view.body["status"] in ("completed", "error", "cancelled"):
            events += poll(api, request_id, after=len(events), user=user).body["events"]
            return {**view.body, "events": events}
    raise AssertionError(f"run {request_id} did not finish")


def messages_of(api: Api, session_id: str) -> list[dict[str, Any]]:
    return api("GET", f"{BASE}/{session_id}/messages", query={"limit": "500"}).body["messages"]


def session(api: Api, session_id: str) -> dict[str, Any]:
    return api("GET", f"{BASE}/{session_id}").body


@pytest.fixture
def sid(api: Api) -> str:
    return api.create_session(title="runs")["session_id"]


def test_an_async_chat_is_accepted_then_streamed_into_numbered_events(api: Api, sid: str) -> None:
    # When the user starts a chat without waiting for it
    accepted = start(api, sid, "Tell me about Lisbon [stream 400]")
    # Then it is accepted at once, with where to poll it
    assert accepted.status == 202, accepted.body
    request_id = accepted.body["request_id"]
    assert accepted.body == {
        "request_id": request_id,
        "session_id": sid,
        "status": "queued",
        "poll_url": f"/api/v1/chat/poll/{request_id}",
    }
    # And its events are numbered 1..n without a gap, deltas first and `complete` last
    run = finished(api, request_id)
    assert run["status"] == "completed"
    assert [event["id"] for event in run["events"]] == list(range(1, len(run["events"]) + 1))
    assert [event["type"] for event in run["events"]][-1] == "complete"
    deltas = [event for event in run["events"] if event["type"] == "assistant"]
    assert len(deltas) >= 2, "a streamed reply is written as it comes, in more than one piece"
    # And the deltas add up to the stored reply, which the run's result names
    reply = messages_of(api, sid)[-1]
    assert "".join(event["delta"] for event in deltas) == reply["content"] == run["result"]["content"]
    assert reply["role"] == "assistant" and reply["request_id"] == request_id and not reply["stopped"]
    assert run["result"]["message_id"] == reply["message_id"] == run["events"][-1]["message_id"]
    assert run["events"][-1]["usage"]["output_tokens"] > 0
    # And the session's turn is free again
    assert "active_run" not in next(item for item in all_items_of(sid) if item["SK"] == "#SESSION")


def all_items_of(session_id: str) -> list[dict[str, Any]]:
    import boto3

    from sessions_api.settings import get_settings

    table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return [item for item in all_items(table) if item["PK"] == f"SESSION#{session_id}"]


def test_a_poll_resumes_after_any_event_it_names(api: Api, sid: str) -> None:
    run = finished(api, start(api, sid, "count [stream 80]").body["request_id"])
    total = len(run["events"])
    for after in range(total + 1):
        # When a client resumes after event N
        again = poll(api, run["request_id"], after=after).body
        # Then it gets exactly the events after N, and where it now is
        assert [event["id"] for event in again["events"]] == list(range(after + 1, total + 1))
        assert again["last_message_id"] == total


def test_a_long_poll_waits_for_the_next_event_and_returns_early(api: Api, sid: str) -> None:
    request_id = start(api, sid, "wait for it [stream 40]").body["request_id"]
    began = time.monotonic()
    view = poll(api, request_id, after=0, wait=10).body
    assert view["events"], "the first event arrived within the wait"
    assert time.monotonic() - began < 9, "the poll answered when the event came, not at the end of the wait"
    finished(api, request_id)


def test_cancel_keeps_the_partial_reply_and_frees_the_session_at_once(api: Api, sid: str) -> None:
    # Given a long run that has started answering
    request_id = start(api, sid, "a long answer [stream 3000]").body["request_id"]
    first = poll(api, request_id, wait=10).body
    assert first["events"], first
    # When the user cancels it
    cancelled = api("POST", f"/api/v1/chat/runs/{request_id}/cancel")
    assert cancelled.status == 200, cancelled.body
    assert cancelled.body == {"request_id": request_id, "status": "cancelled"}
    # Then the session takes a new chat right away
    again = start(api, sid, "next question")
    assert again.status == 202, again.body
    # And the reply so far is stored, marked stopped, and equals the deltas the run kept
    run = finished(api, request_id)
    assert run["status"] == "cancelled" and run["events"][-1]["type"] == "complete"
    assert run["events"][-1]["stopped"] is True
    finished(api, again.body["request_id"])
    messages = messages_of(api, sid)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    stopped = messages[1]
    deltas = "".join(event["delta"] for event in run["events"] if event["type"] == "assistant")
    assert stopped["stopped"] is True and stopped["content"] == deltas and stopped["request_id"] == request_id
    assert len(stopped["content"].split()) < 3000, "the worker stopped at its next chunk"
    # And no event of the cancelled run came after its end (the worker wrote nothing more)
    time.sleep(0.5)
    assert poll(api, request_id, after=run["events"][-1]["id"]).body["events"] == []
    # And a finished run cannot be cancelled
    assert api("POST", f"/api/v1/chat/runs/{request_id}/cancel").status == 409


def test_if_busy_reject_refuses_and_stores_nothing(api: Api, sid: str) -> None:
    running = start(api, sid, "busy [stream 400]").body["request_id"]
    before = messages_of(api, sid)
    refused = start(api, sid, "me too")
    assert refused.status == 409 and refused.body["code"] == "session_busy"
    assert messages_of(api, sid) == before
    finished(api, running)


def test_enqueued_chats_run_in_submission_order_and_messages_alternate(api: Api, sid: str) -> None:
    first = start(api, sid, "one [stream 100]").body["request_id"]
    queued = [start(api, sid, f"then {n}", if_busy="enqueue") for n in range(3)]
    assert all(result.status == 202 for result in queued), [result.body for result in queued]
    for request_id in [first, *(result.body["request_id"] for result in queued)]:
        assert finished(api, request_id)["status"] == "completed"
    messages = messages_of(api, sid)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one [stream 100]", "then 0", "then 1", "then 2"]
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert question["request_id"] == answer["request_id"], "each reply answers its own run's message"
    assert "active_run" not in session_item(sid) and int(session_item(sid).get("waiting_runs", 0)) == 0


def session_item(session_id: str) -> dict[str, Any]:
    return next(item for item in all_items_of(session_id) if item["SK"] == "#SESSION")


def test_interrupt_cancels_the_running_chat_and_runs_at_once(api: Api, sid: str) -> None:
    running = start(api, sid, "long [stream 3000]").body["request_id"]
    assert poll(api, running, wait=10).body["events"]
    interrupting = start(api, sid, "stop, answer this", if_busy="interrupt")
    assert interrupting.status == 202, interrupting.body
    assert finished(api, running)["status"] == "cancelled"
    assert finished(api, interrupting.body["request_id"])["status"] == "completed"
    roles = [(m["role"], m["stopped"]) for m in messages_of(api, sid)]
    assert roles == [("user", False), ("assistant", True), ("user", False), ("assistant", False)]


def test_the_same_idempotency_key_three_times_is_one_run(api: Api, sid: str) -> None:
    headers = {"Idempotency-Key": "chat-once"}
    answers = [api("POST", f"{BASE}/{sid}/chat/async", body={"message": "once"}, headers=headers) for _ in range(3)]
    assert {answer.status for answer in answers} == {202}
    assert len({answer.body["request_id"] for answer in answers}) == 1
    finished(api, answers[0].body["request_id"])
    # A synchronous chat with that key answers the same run instead of starting one
    sync = api("POST", f"{BASE}/{sid}/chat", body={"message": "once"}, headers=headers)
    assert sync.status == 200 and sync.body["request_id"] == answers[0].body["request_id"]
    assert [m["content"] for m in messages_of(api, sid) if m["role"] == "user"] == ["once"]


def test_strangers_get_404_viewers_read_but_do_not_cancel(api: Api, sid: str) -> None:
    api("POST", f"{BASE}/{sid}/share", body={"recipients": ["vera"], "permissions": "view"})
    request_id = start(api, sid, "private [stream 200]").body["request_id"]
    assert poll(api, request_id, user="mallory").status == 404
    assert api("POST", f"/api/v1/chat/runs/{request_id}/cancel", user="mallory").status == 404
    assert api("GET", f"{BASE}/{sid}/runs", user="mallory").status == 404
    stream = api("POST", f"{BASE}/{sid}/chat/stream", body={"message": "x"}, user="mallory")
    assert stream.status == 404
    assert poll(api, request_id, user="vera").status == 200
    assert api("POST", f"/api/v1/chat/runs/{request_id}/cancel", user="vera").status == 403
    assert start(api, sid, "me", user="vera").status == 403
    assert poll(api, "run_nonsense").status == 404
    finished(api, request_id)


def test_the_stream_route_answers_every_event_as_server_sent_events(api: Api, sid: str) -> None:
    result = api("POST", f"{BASE}/{sid}/chat/stream", body={"message": "stream me [stream 50]"})
    assert result.status == 200 and result.headers["Content-Type"] == "text/event-stream"
    blocks = [block for block in result.body.split("\n\n") if block]
    import json

    events = [json.loads(block.split("data: ", 1)[1]) for block in blocks]
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "complete"
    assert "".join(e["delta"] for e in events if e["type"] == "assistant") == messages_of(api, sid)[-1]["content"]


def test_the_runs_list_is_newest_first(api: Api, sid: str) -> None:
    ids = [finished(api, start(api, sid, f"q{n}").body["request_id"])["request_id"] for n in range(3)]
    runs = api("GET", f"{BASE}/{sid}/runs").body["runs"]
    assert [run["request_id"] for run in runs] == ids[::-1]
    assert all(run["status"] == "completed" and run["finished_at"] and run["message_id"] for run in runs)


def test_ten_clients_enqueueing_on_one_session_get_strictly_alternating_turns(api: Api, sid: str) -> None:
    accepted: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        result = start(api, sid, f"client {n}", if_busy="enqueue")
        assert result.status == 202, result.body
        with lock:
            accepted.append(result.body["request_id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for request_id in accepted:
        finished(api, request_id, seconds=60)
    messages = messages_of(api, sid)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 10
    assert {m["request_id"] for m in messages} == set(accepted) and len(accepted) == 10
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert question["request_id"] == answer["request_id"], "each reply answers its own run's message"


def test_the_sample_stream_event_matches_the_mapping_filter_and_the_worker_takes_it(api: Api) -> None:
    import json

    from local import streams
    from tests import support

    event = json.loads((support.EVENTS / "worker_run.json").read_text())
    resource = support.stack().template["Resources"]["ChatWorkerFunction"]
    ((_, properties),) = streams.stream_events(resource)
    mapping = streams.source_mapping("arn:example", properties)
    assert all(any(streams.matches(p, record) for p in mapping.patterns) for record in event["Records"])
    not_ready = json.loads(json.dumps(event))
    not_ready["Records"][0]["dynamodb"]["NewImage"]["phase"] = {"S": "running"}
    assert not any(streams.matches(p, not_ready["Records"][0]) for p in mapping.patterns)
    # The sample names a run that does not exist here: the worker finds nothing to claim and ends cleanly
    worker = support.load_function("ChatWorkerFunction")
    assert worker.handler(event, support.LambdaContext(timeout_seconds=60)) == {"runs": 1}


def test_the_worker_writes_a_bounded_number_of_items_per_run(api: Api, sid: str) -> None:
    from sessions_api.dal import clients

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if threading.current_thread().name.startswith("stream-batch"):
            calls.append(model.name)

    clients.dynamodb().meta.events.register("before-call.dynamodb", record)
    finished(api, start(api, sid, "short").body["request_id"])
    # claim, the session, the context, one event write and the run's live subscribers, who waits next, the end,
    # then what the worker did not write itself and the subscribers once more (tests/integration/test_live.py)
    assert calls == [
        "UpdateItem",
        "BatchGetItem",
        "Query",
        "TransactWriteItems",
        "Query",
        "Query",
        "TransactWriteItems",
        "Query",
        "Query",
    ]
    calls.clear()
    run = finished(api, start(api, sid, "long [stream 2000]").body["request_id"])
    writes = calls.count("TransactWriteItems")
    deltas = sum(1 for event in run["events"] if event["type"] == "assistant")
    assert writes == deltas + 1, "one write per coalesced event, and the end"
    assert deltas < 2000 / 4 / 4, "2,000 words in 500 chunks are written as far fewer events"
