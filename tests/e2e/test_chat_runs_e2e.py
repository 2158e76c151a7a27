"""Chat runs through the local gateway: the messages function accepts them, the chat worker runs them from
the table's stream (played by the local event-source mapping), and a client polls, streams and cancels."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.e2e.conftest import ApiClient


def poll_until_done(api: ApiClient, request_id: str, seconds: float = 60) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = api.get(f"/api/v1/chat/poll/{request_id}", params={"after_message_id": len(events), "wait": 5})
        assert view.status_code == 200, view.text
        events += view.json()["events"]
        if view.json()["status"] in ("completed", "error", "cancelled"):
            return {**view.json(), "events": events}
    raise AssertionError(f"run {request_id} did not finish")


def test_async_poll_cancel_and_stream_end_to_end(api: ApiClient) -> None:
    sid = api.post("/api/v1/sessions", json={"title": "runs e2e"}).json()["session_id"]
    # An async chat runs on the worker and is read back by polling, its events numbered without a gap
    accepted = api.post(f"/api/v1/sessions/{sid}/chat/async", json={"message": "hello [stream 30]"})
    assert accepted.status_code == 202, accepted.text
    run = poll_until_done(api, accepted.json()["request_id"])
    assert run["status"] == "completed"
    assert [event["id"] for event in run["events"]] == list(range(1, len(run["events"]) + 1))
    text = "".join(event["delta"] for event in run["events"] if event["type"] == "assistant")
    assert text == run["result"]["content"] and text.startswith("Echo: hello")

    # A long run, cancelled once it has started, keeps what it had said and frees the session
    long = api.post(f"/api/v1/sessions/{sid}/chat/async", json={"message": "long [stream 5000]"}).json()
    first = api.get(f"/api/v1/chat/poll/{long['request_id']}", params={"wait": 20}).json()
    assert first["events"], first
    cancelled = api.post(f"/api/v1/chat/runs/{long['request_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    stopped = poll_until_done(api, long["request_id"])
    assert stopped["status"] == "cancelled"

    # The synchronous chat is a run awaited; the stream route answers server-sent events
    sync = api.post(f"/api/v1/sessions/{sid}/chat", json={"message": "sync"})
    assert sync.status_code == 200, sync.text
    assert sync.json()["response"].startswith("Echo: sync")
    streamed = api.post(f"/api/v1/sessions/{sid}/chat/stream", json={"message": "sse [stream 20]"})
    assert streamed.status_code == 200 and streamed.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(block.split("data: ", 1)[1]) for block in streamed.text.split("\n\n") if block]
    assert events[-1]["type"] == "complete"

    # The conversation alternates, the stopped reply marked
    messages = api.get(f"/api/v1/sessions/{sid}/messages").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert [m["stopped"] for m in messages[1::2]] == [False, True, False, False]
    runs = api.get(f"/api/v1/sessions/{sid}/runs").json()["runs"]
    assert [r["status"] for r in runs] == ["completed", "completed", "cancelled", "completed"]


def test_prompt_to_deck_to_pptx_offline_as_the_readme_shows(api: ApiClient) -> None:
    import io
    import uuid

    from pptx import Presentation

    # A front end's own id, the slides agent, five slides asked for
    sid = str(uuid.uuid4())
    created = api.post("/api/v1/sessions", json={"session_id": sid, "title": "Clean energy", "agent_name": "slides"})
    assert created.status_code == 201, created.text
    asked = {"message": "Make 5 slides about solar, wind and hydro power"}
    accepted = api.post(f"/api/v1/sessions/{sid}/chat/async", json=asked)
    assert accepted.status_code == 202, accepted.text
    run = poll_until_done(api, accepted.json()["request_id"])
    assert run["status"] == "completed", run
    kinds = [event["type"] for event in run["events"]]
    # (the reply's text comes in as many `assistant` events as the stream's pace makes)
    assert [kind for number, kind in enumerate(kinds) if not number or kinds[number - 1] != kind] == [
        "assistant",
        "tool_call",
        "tool_result",
        "slides",
        "assistant",
        "complete",
    ]
    assert run["result"]["slides"]["slide_count"] == 5
    # A revision of the second slide, as the client shows it
    slides = api.get(f"/api/v1/sessions/{sid}/slides").json()["slide_deck"]["slides"]
    context = {"indices": [1], "slide_htmls": [slides[1]["html"]]}
    revised = api.post(f"/api/v1/sessions/{sid}/chat/async", json={"message": "About costs", "slide_context": context})
    run = poll_until_done(api, revised.json()["request_id"])
    assert run["result"]["replacement_info"] == {"start_index": 1, "original_count": 1, "replacement_count": 1}
    # And the PPTX, followed to the file as `curl -L -OJ` does, has the five slides, titled
    response = api.get(f"/api/v1/sessions/{sid}/export", params={"format": "pptx"}, allow_redirects=True)
    assert response.status_code == 200, response.text
    assert 'filename="Clean energy.pptx"' in response.headers.get("Content-Disposition", "")
    titles = [slide.shapes.title.text for slide in Presentation(io.BytesIO(response.content)).slides]
    assert titles == ["Solar, wind and hydro power", "Solar", "Wind", "Hydro power", "Why it matters"]
