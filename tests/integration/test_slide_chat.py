"""Slide-generating chat, in-process with moto: the `slides` agent writes or revises the session's deck through
its `write_slides` tool, on the path `PUT /slides` takes (versions, history, never over a newer deck).

The local model makes the deck from the message (tests/unit/test_local_slides.py pins how); here the loop
around it: events, the stored deck, revisions, a human editing meanwhile, a model that keeps sending bad decks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_chat_run_faults import run_once
from tests.integration.test_chat_runs import finished, messages_of
from tests.support import Api

BASE = "/api/v1/sessions"


def deck_session(api: Api, **body: Any) -> str:
    return str(api.create_session(title="Energy talk", agent_name="slides", **body)["session_id"])


def chat(api: Api, sid: str, message: str, user: str = "alice", **body: Any) -> Any:
    return api("POST", f"{BASE}/{sid}/chat/async", body={"message": message, **body}, user=user)


def run_to_end(api: Api, sid: str, message: str, **body: Any) -> dict[str, Any]:
    accepted = chat(api, sid, message, **body)
    assert accepted.status == 202, accepted.body
    return finished(api, accepted.body["request_id"])


def deck_of(api: Api, sid: str) -> dict[str, Any]:
    found = api("GET", f"{BASE}/{sid}/slides")
    assert found.status == 200, found.body
    return dict(found.body)


def history_of(api: Api, sid: str) -> list[dict[str, Any]]:
    return list(api("GET", f"{BASE}/{sid}/history", query={"limit": "100"}).body["timeline"])


def test_a_slides_chat_writes_the_deck_and_says_what_it_made(api: Api) -> None:
    # Given a session of the slides agent, without a deck
    sid = deck_session(api)
    assert deck_of(api, sid) == {"session_id": sid, "slide_deck": None, "version": 0}
    # When the user asks for five slides
    run = run_to_end(api, sid, "Make 5 slides about solar, wind and hydro power")
    # Then the run calls the tool, the deck is stored, and the model says what it made
    assert run["status"] == "completed", run
    kinds = [event["type"] for event in run["events"]]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("slides") < kinds.index("complete")
    assert kinds[-1] == "complete" and kinds.count("slides") == 1
    call = next(event for event in run["events"] if event["type"] == "tool_call")
    assert call["tool"] == "write_slides" and len(call["input"]["slides"]) == 5
    result = next(event for event in run["events"] if event["type"] == "tool_result")
    assert result["output"]["status"] == "written" and result["output"]["version"] == 1
    stored = deck_of(api, sid)
    assert stored["version"] == 1 and stored["slide_deck"]["slide_count"] == 5
    assert stored["slide_deck"]["slides"] == call["input"]["slides"]
    headings = ["Solar", "Wind", "Hydro power"]
    assert [
        f"<h2>{heading}</h2>" in slide["html"]
        for heading, slide in zip(headings, stored["slide_deck"]["slides"][1:], strict=False)
    ] == [True] * 3
    slides_event = next(event for event in run["events"] if event["type"] == "slides")
    assert slides_event["slide_deck"] == stored["slide_deck"] and slides_event["version"] == 1
    # And `complete` and the poll's result carry the deck, its standalone HTML and no replacement
    complete = run["events"][-1]
    assert complete["slides"] == stored["slide_deck"] == run["result"]["slides"]
    assert complete["raw_html"] == run["result"]["raw_html"]
    assert complete.get("replacement_info") is None and run["result"]["replacement_info"] is None
    html = run["result"]["raw_html"]
    assert html.startswith("<!DOCTYPE html>") and html.count('<section class="slide"') == 5
    assert stored["slide_deck"]["css"] in html and "<title>Energy talk</title>" in html
    # And the reply, which every delta adds up to, names what was made
    reply = messages_of(api, sid)[-1]
    deltas = "".join(event["delta"] for event in run["events"] if event["type"] == "assistant")
    assert reply["content"] == deltas == run["result"]["content"]
    assert "The deck has 5 slides" in reply["content"] and not reply["is_error"]
    # And the history says the run wrote the deck
    written = [event for event in history_of(api, sid) if event["type"] == "deck_written"]
    assert len(written) == 1 and written[0]["details"]["request_id"] == run["request_id"]
    assert written[0]["details"]["version"] == 1 and written[0]["details"]["change"] == "written"
    # And the session says it has a deck
    assert api("GET", f"{BASE}/{sid}").body["has_slide_deck"] is True


def test_three_slides_by_default_and_the_agent_may_be_the_chats(api: Api) -> None:
    sid = str(api.create_session(title="plain")["session_id"])
    run = run_to_end(api, sid, "A deck on team onboarding", agent_name="slides")
    assert run["status"] == "completed", run
    assert deck_of(api, sid)["slide_deck"]["slide_count"] == 3
    # And the chat agent, without the tool, only talks
    talk = run_to_end(api, sid, "Make 5 slides about tides")
    assert [event["type"] for event in talk["events"]].count("tool_call") == 0
    assert deck_of(api, sid)["version"] == 1


def five_slide_deck(api: Api) -> tuple[str, dict[str, Any]]:
    sid = deck_session(api)
    assert run_to_end(api, sid, "Make 5 slides about solar, wind and hydro power")["status"] == "completed"
    return sid, deck_of(api, sid)


def test_a_revision_changes_only_the_slides_it_names(api: Api) -> None:
    # Given a five-slide deck
    sid, before = five_slide_deck(api)
    slides = before["slide_deck"]["slides"]
    # When the user revises slide 2 (index 1) as the client shows it
    context = {"indices": [1], "slide_htmls": [slides[1]["html"]]}
    run = run_to_end(api, sid, "Make this slide about costs", slide_context=context)
    # Then only that slide changed, and the others are byte-identical
    assert run["status"] == "completed", run
    after = deck_of(api, sid)
    assert after["version"] == 2
    assert json.dumps(after["slide_deck"]["slides"][:1]) == json.dumps(slides[:1])
    assert json.dumps(after["slide_deck"]["slides"][2:]) == json.dumps(slides[2:])
    assert after["slide_deck"]["slides"][1]["html"] != slides[1]["html"]
    assert "costs" in after["slide_deck"]["slides"][1]["html"]
    assert after["slide_deck"]["css"] == before["slide_deck"]["css"]
    # And the run says which slides it replaced
    info = {"start_index": 1, "original_count": 1, "replacement_count": 1}
    assert run["result"]["replacement_info"] == info == run["events"][-1]["replacement_info"]
    assert run["result"]["slides"] == after["slide_deck"]


class HumanEditsMeanwhile:
    """The local model, and a person's `PUT` of one slide after the run has read the deck, before it writes."""

    def __init__(self, api: Api, sid: str, slide_id: str, html: str) -> None:
        from sessions_api.providers.local_echo import LocalEchoProvider

        self.inner, self.api, self.sid, self.slide_id, self.html = LocalEchoProvider(0), api, sid, slide_id, html
        self.edited = False

    def model_for(self, requested: str) -> str:
        return self.inner.model_for(requested)

    def converse_stream(self, request: Any) -> Any:
        if not self.edited:
            self.edited = True
            edit = self.api("PUT", f"{BASE}/{self.sid}/slides/{self.slide_id}", body={"html": self.html})
            assert edit.status == 200, edit.body
        return self.inner.converse_stream(request)


def accept_only(api: Api, sid: str, message: str, **body: Any) -> str:
    accepted = chat(api, sid, message, **body)
    assert accepted.status == 202, accepted.body
    return str(accepted.body["request_id"])


def test_a_revision_is_applied_again_over_a_human_edit_of_another_slide(api: Api, no_chat_worker: None) -> None:
    # Given a deck, and a revision of slide 2 during which a person edits slide 4
    sid = deck_session(api)
    run_once(sid, accept_only(api, sid, "Make 5 slides about solar, wind and hydro power"))
    slides = deck_of(api, sid)["slide_deck"]["slides"]
    request_id = accept_only(
        api, sid, "Make this about costs", slide_context={"indices": [1], "slide_htmls": [slides[1]["html"]]}
    )
    # When the worker runs it
    run_once(sid, request_id, HumanEditsMeanwhile(api, sid, "slide-4", "<h2>Edited by a person</h2>"))
    # Then both changes are in the deck: the person's edit is not lost, the revision is applied over it
    after = deck_of(api, sid)
    assert after["version"] == 3
    assert after["slide_deck"]["slides"][3]["html"] == "<h2>Edited by a person</h2>"
    assert "costs" in after["slide_deck"]["slides"][1]["html"]
    assert json.dumps(after["slide_deck"]["slides"][0]) == json.dumps(slides[0])
    run = finished(api, request_id)
    assert run["status"] == "completed" and run["result"]["slides"] == after["slide_deck"]


@pytest.mark.parametrize("revising", [True, False], ids=["revising-the-edited-slide", "writing-the-whole-deck"])
def test_a_run_never_overwrites_a_slide_a_person_changed_after_it_read_the_deck(
    api: Api, no_chat_worker: None, revising: bool
) -> None:
    # Given a deck, and a run during which a person edits slide 2
    sid = deck_session(api)
    run_once(sid, accept_only(api, sid, "Make 5 slides about solar, wind and hydro power"))
    slides = deck_of(api, sid)["slide_deck"]["slides"]
    body = {"slide_context": {"indices": [1], "slide_htmls": [slides[1]["html"]]}} if revising else {}
    request_id = accept_only(api, sid, "Make this about costs", **body)
    run_once(sid, request_id, HumanEditsMeanwhile(api, sid, "slide-2", "<h2>Mine</h2>"))
    # Then the person's deck stands, and the run says why it wrote nothing
    after = deck_of(api, sid)
    assert after["version"] == 2 and after["slide_deck"]["slides"][1]["html"] == "<h2>Mine</h2>"
    run = finished(api, request_id)
    assert run["status"] == "completed", run
    result = next(event for event in run["events"] if event["type"] == "tool_result")
    assert result["output"]["status"] == "conflict" and result["output"]["code"] == "deck_conflict"
    assert "slides" not in [event["type"] for event in run["events"]]
    assert run["result"]["slides"] is None and run["events"][-1]["type"] == "complete"
    assert "left their version" in run["result"]["content"]
    assert [event["type"] for event in history_of(api, sid)].count("deck_written") == 1


def test_a_model_that_sends_an_invalid_deck_twice_ends_the_run_in_error_with_nothing_written(api: Api) -> None:
    # Given a session with a deck
    sid, before = five_slide_deck(api)
    # When the model is asked for more slides than a deck may have (it sends the same deck again when told)
    run = run_to_end(api, sid, "Make 501 slides about everything")
    # Then it was told why, once, and the run ended in error
    assert run["status"] == "error", run
    kinds = [event["type"] for event in run["events"]]
    assert kinds.count("tool_call") == 2 and kinds.count("tool_result") == 2 and kinds[-1] == "error"
    refusal = next(event for event in run["events"] if event["type"] == "tool_result")["output"]
    assert refusal["status"] == "refused" and refusal["code"] == "invalid_deck"
    assert any(problem["field"] == "slides" for problem in refusal["errors"])
    assert run["error"]["code"] == "invalid_deck"
    # And the deck is as it was, the reply an error reply
    assert deck_of(api, sid) == before
    assert messages_of(api, sid)[-1]["is_error"] is True


@pytest.mark.parametrize(
    "proposed",
    [
        {"slides": "not a list"},
        {"slides": [{"slide_id": "a", "html": "x"}, {"slide_id": "a", "html": "y"}]},
        {"slides": [{"slide_id": "../etc", "html": "x"}]},
        {"slides": [{"slide_id": "a", "html": "x" * 200_001}]},
        "not even an object",
    ],
    ids=["wrong-shape", "repeated-id", "bad-id", "oversize-slide", "not-json"],
)
def test_a_wrongly_shaped_deck_is_told_back_then_ends_the_run(
    api: Api, monkeypatch: pytest.MonkeyPatch, proposed: Any
) -> None:
    from sessions_api.providers import ToolCall, local_slides

    monkeypatch.setattr(
        local_slides, "slide_call", lambda request, call_id: ("", ToolCall(call_id, "write_slides", proposed))
    )
    sid = deck_session(api)
    run = run_to_end(api, sid, "Make slides")
    assert run["status"] == "error" and run["error"]["code"] == "invalid_deck", run
    assert [event["type"] for event in run["events"]].count("tool_result") == 2
    assert deck_of(api, sid)["slide_deck"] is None


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"indices": [1, 3], "slide_htmls": ["a", "b"]}, "slide_context"),
        ({"indices": [2, 1], "slide_htmls": ["a", "b"]}, "slide_context"),
        ({"indices": [1], "slide_htmls": ["a", "b"]}, "slide_context"),
        ({"indices": [], "slide_htmls": []}, "slide_context.indices"),
        ({"indices": [5], "slide_htmls": ["a"]}, "slide_context.indices"),
        ({"indices": [-1], "slide_htmls": ["a"]}, "slide_context.indices.0"),
        ({"indices": [1]}, "slide_context.slide_htmls"),
    ],
)
def test_a_bad_slide_context_is_refused_and_nothing_is_stored(api: Api, context: dict[str, Any], field: str) -> None:
    sid, before = five_slide_deck(api)
    count = len(messages_of(api, sid))
    refused = chat(api, sid, "Revise", slide_context=context)
    assert refused.status == 422, refused.body
    assert refused.body["code"] == "validation_error"
    assert any(problem["field"].startswith(f"body.{field}") for problem in refused.body["errors"]), refused.body
    assert len(messages_of(api, sid)) == count and deck_of(api, sid) == before
    assert len(api("GET", f"{BASE}/{sid}/runs").body["runs"]) == 1


def test_a_slide_context_needs_the_slides_agent_and_a_session(api: Api) -> None:
    sid, _ = five_slide_deck(api)
    context = {"indices": [0], "slide_htmls": ["x"]}
    assert chat(api, sid, "Revise", slide_context=context, agent_name="chat").status == 422
    sessions = api("GET", BASE).body["total"]
    refused = api(
        "POST", "/api/v1/chat/async", body={"message": "Revise", "slide_context": context, "agent_name": "slides"}
    )
    assert refused.status == 422 and api("GET", BASE).body["total"] == sessions


def test_a_viewer_cannot_have_a_run_write_the_deck(api: Api) -> None:
    sid, before = five_slide_deck(api)
    shared = api("POST", f"{BASE}/{sid}/share", body={"recipients": ["bob"], "permissions": "view"})
    assert shared.status == 201, shared.body
    assert chat(api, sid, "Make 2 slides about me", user="bob").status == 403
    assert deck_of(api, sid) == before


def test_an_editor_s_run_writes_the_deck_as_the_editor(api: Api) -> None:
    sid, _ = five_slide_deck(api)
    assert api("POST", f"{BASE}/{sid}/share", body={"recipients": ["bob"], "permissions": "edit"}).status == 201
    accepted = chat(api, sid, "Make 2 slides about sharing", user="bob")
    run = finished(api, accepted.body["request_id"], user="bob")
    assert run["status"] == "completed", run
    assert deck_of(api, sid)["slide_deck"]["slide_count"] == 2
    written = [event for event in history_of(api, sid) if event["type"] == "deck_written"]
    assert written[-1]["actor"] == "bob"


def test_a_bedrock_run_calls_the_tool_and_returns_its_result_to_the_model(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from moto.core import botocore_stubber

    from sessions_api.dal import clients
    from sessions_api.dal.bedrock import BedrockConverseProvider
    from tests.unit.test_model_streaming import END, START, Body, text_delta, tool_use_frames

    # Given Bedrock that first calls write_slides (its input in fragments), then says what it made
    deck = {"slides": [{"slide_id": "t1", "html": "<h1>Tides</h1>"}, {"slide_id": "t2", "html": "<h2>Moon</h2>"}]}
    encoded = json.dumps(deck)
    answers = [
        Body(
            [START, text_delta("Writing."), *tool_use_frames("tooluse_1", "write_slides", [encoded[:9], encoded[9:]])]
        ),
        Body([START, text_delta(" Two slides on tides."), *END]),
    ]
    sent: list[dict[str, Any]] = []

    def respond(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        headers = HTTPHeaders.from_dict({"content-type": "application/vnd.amazon.eventstream"})
        return AWSResponse("https://bedrock-runtime.invalid", 200, headers, answers[len(sent) - 1])

    # moto has no ConverseStream: it lets Bedrock's requests pass to the fake Bedrock here
    real_passthrough = botocore_stubber.passthrough_service
    monkeypatch.setattr(
        botocore_stubber,
        "passthrough_service",
        lambda service: service == "bedrockruntime" or real_passthrough(service),
    )
    clients.reset()
    clients.bedrock_runtime().meta.events.register_first("before-send.bedrock-runtime.ConverseStream", respond)
    try:
        sid = deck_session(api)
        request_id = accept_only(api, sid, "Two slides on tides")
        run_once(sid, request_id, BedrockConverseProvider())
    finally:
        clients.reset()
    # Then the deck is the model's, and the model was given the tool's result for its call
    assert deck_of(api, sid)["slide_deck"]["slides"] == deck["slides"]
    assert len(sent) == 2 and sent[0]["toolConfig"] == sent[1]["toolConfig"]
    call, result = sent[1]["messages"][-2:]
    assert call["content"][-1]["toolUse"] == {"toolUseId": "tooluse_1", "name": "write_slides", "input": deck}
    (answer,) = result["content"]
    assert answer["toolResult"]["toolUseId"] == "tooluse_1" and answer["toolResult"]["status"] == "success"
    assert answer["toolResult"]["content"][0]["json"]["status"] == "written"
    # And the run's reply is everything the model said, its usage both calls'
    run = finished(api, request_id)
    assert run["status"] == "completed" and run["result"]["content"] == "Writing. Two slides on tides."
    assert run["result"]["usage"]["input_tokens"] == 50 + 21 and run["result"]["usage"]["output_tokens"] == 40 + 7


def test_a_forty_slide_generated_deck_exports_to_pptx_and_pdf(api: Api) -> None:
    import io

    import boto3
    from pptx import Presentation
    from pypdf import PdfReader

    sid = deck_session(api)
    assert run_to_end(api, sid, "Make 40 slides about the history of computing")["status"] == "completed"
    assert deck_of(api, sid)["slide_deck"]["slide_count"] == 40
    for export_format in ("pptx", "pdf"):
        made = api("POST", f"{BASE}/{sid}/export", body={"format": export_format})
        assert made.status == 201, made.body
        assert made.body["slide_count"] == 40
        bucket = boto3.client("s3")
        listed = bucket.list_objects_v2(Bucket=_bucket())["Contents"]
        key = next(item["Key"] for item in listed if item["Key"].endswith(f"{made.body['export_id']}.{export_format}"))
        data = bucket.get_object(Bucket=_bucket(), Key=key)["Body"].read()
        if export_format == "pptx":
            presentation = Presentation(io.BytesIO(data))
            assert len(presentation.slides) == 40
            assert presentation.slides[0].shapes.title.text == "The history of computing"
            assert presentation.slides[39].shapes.title.text == "The history of computing: part 39"
        else:
            pages = PdfReader(io.BytesIO(data)).pages
            assert len(pages) == 40
            assert "The history of computing" in pages[0].extract_text()
            assert "Why it matters" in pages[1].extract_text()


def _bucket() -> str:
    import os

    return os.environ["BUCKET_NAME"]


def test_a_deck_too_large_for_an_event_is_named_by_where_to_read_it(api: Api) -> None:
    # Given a deck of about 300 KB a person wrote
    sid = deck_session(api)
    big = {"slides": [{"slide_id": f"s{n}", "html": f"<h2>Part {n}</h2><p>{'€' * 2000}</p>"} for n in range(50)]}
    assert api("PUT", f"{BASE}/{sid}/slides", body=big).status == 200
    # When a run revises one of its slides
    context = {"indices": [0], "slide_htmls": [big["slides"][0]["html"]]}
    run = run_to_end(api, sid, "Make this about the budget", slide_context=context)
    # Then the deck is revised, and its events point at GET /slides instead of carrying it
    assert run["status"] == "completed", run
    stored = deck_of(api, sid)
    assert stored["version"] == 2 and "budget" in stored["slide_deck"]["slides"][0]["html"]
    assert stored["slide_deck"]["slides"][1:] == big["slides"][1:]
    slides_event = next(event for event in run["events"] if event["type"] == "slides")
    assert slides_event.get("slide_deck") is None and slides_event["deck_url"] == f"{BASE}/{sid}/slides"
    assert run["events"][-1].get("slides") is None and "raw_html" not in run["events"][-1]
    assert run["events"][-1]["deck_url"] == f"{BASE}/{sid}/slides" and run["result"]["slides"] is None
    assert run["result"]["replacement_info"] == {"start_index": 0, "original_count": 1, "replacement_count": 1}


def test_a_run_cancelled_just_before_it_writes_the_deck_writes_nothing(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.logic.decks import Decks

    # Given a run whose user presses stop after the model called the tool, before the deck is stored
    sid = deck_session(api)
    request_id = accept_only(api, sid, "Make 4 slides about tides")
    store = Decks.store_for_run

    def cancelled_first(self: Decks, *args: Any, **kwargs: Any) -> Any:
        assert api("POST", f"/api/v1/chat/runs/{request_id}/cancel").status == 200
        return store(self, *args, **kwargs)

    monkeypatch.setattr(Decks, "store_for_run", cancelled_first)
    # When the worker goes on
    run_once(sid, request_id)
    # Then the deck was not written: the deck write and the run's events are one transaction
    assert deck_of(api, sid)["slide_deck"] is None
    run = finished(api, request_id)
    assert run["status"] == "cancelled"
    assert [event["type"] for event in run["events"]] == ["assistant", "tool_call", "complete"]
    assert "deck_written" not in [event["type"] for event in history_of(api, sid)]


def test_the_model_is_told_the_titles_of_what_it_wrote(api: Api) -> None:
    sid = deck_session(api)
    run = run_to_end(api, sid, "Make 4 slides about <b>solar</b> & wind")
    written = next(event for event in run["events"] if event["type"] == "tool_result")["output"]
    assert written["titles"] == ["<b>solar</b> & wind", "<b>solar</b>", "Wind", "Why it matters"]
    assert run["result"]["content"].endswith(
        "The deck has 4 slides: <b>solar</b> & wind; <b>solar</b>; Wind; Why it matters."
    )


def test_slide_htmls_over_their_limit_are_refused_before_anything_is_stored(api: Api) -> None:
    sid, before = five_slide_deck(api)
    at_limit = {"indices": [0, 1], "slide_htmls": ["é" * 50_000, "é" * 50_000]}
    over = {"indices": [0, 1], "slide_htmls": ["é" * 50_000, "é" * 50_001]}
    refused = chat(api, sid, "Revise", slide_context=over)
    assert refused.status == 422 and "100,000" in refused.body["errors"][0]["message"]
    assert deck_of(api, sid) == before
    assert chat(api, sid, "Revise", slide_context=at_limit).status == 202


class RetriesAfterAConflict:
    """A model that writes the whole deck, is told a person changed it meanwhile, and writes it again."""

    def __init__(self, api: Api, sid: str) -> None:
        self.human = HumanEditsMeanwhile(api, sid, "slide-2", "<h2>Mine</h2>")
        self.calls = 0

    def model_for(self, requested: str) -> str:
        return "scripted"

    def converse_stream(self, request: Any) -> Any:
        from sessions_api.providers import ModelReply, ToolCall

        self.calls += 1
        if self.calls == 1:
            self.human.converse_stream(request)  # the person's edit lands now
        results = request.turns[-1].tool_results
        done = results and results[0].output["status"] == "written"
        deck = {"slides": [{"slide_id": "n1", "html": "<h1>New</h1>"}]}
        calls = () if done else (ToolCall(f"t{self.calls}", "write_slides", deck),)

        class Stream:
            reply = ModelReply("Done." if done else "", "scripted", 10, 5, None, "end_turn", calls)

            def __iter__(self) -> Any:
                return iter(["Done."] if done else [""])

            def close(self) -> None:
                pass

        return Stream()


def test_after_a_conflict_the_model_s_second_write_is_planned_on_the_deck_as_it_is_now(
    api: Api, no_chat_worker: None
) -> None:
    sid = deck_session(api)
    run_once(sid, accept_only(api, sid, "Make 5 slides about solar, wind and hydro power"))
    request_id = accept_only(api, sid, "Start over")
    run_once(sid, request_id, RetriesAfterAConflict(api, sid))
    run = finished(api, request_id)
    outputs = [e["output"]["status"] for e in run["events"] if e["type"] == "tool_result"]
    assert outputs == ["conflict", "written"] and run["status"] == "completed", run
    assert deck_of(api, sid)["version"] == 3  # the run's, over the person's version 2 it was shown
    # And every model call was billed
    assert run["result"]["usage"]["input_tokens"] == 30


def test_a_run_that_fails_after_model_calls_bills_them(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessions_api.providers import ToolCall, local_slides

    monkeypatch.setattr(
        local_slides, "slide_call", lambda request, call_id: ("", ToolCall(call_id, "write_slides", "x"))
    )
    sid = deck_session(api)
    run = run_to_end(api, sid, "Make slides")
    assert run["status"] == "error"
    assert api("GET", f"{BASE}/{sid}").body["token_usage"]["input_tokens"] > 0


def test_a_model_silent_while_it_writes_a_long_tool_input_keeps_its_run(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import timedelta

    from sessions_api import timeutil
    from sessions_api.dal.runs_repo import RunsRepo
    from sessions_api.logic import runner
    from sessions_api.providers import ModelReply, ToolCall
    from sessions_api.settings import get_settings

    # A clock the test moves: the worker's, and the one leases are written by
    shift = {"seconds": 0.0}
    real_now = timeutil.now

    class Clock:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + shift["seconds"]

    monkeypatch.setattr(runner, "time", Clock())
    monkeypatch.setattr(timeutil, "now", lambda: real_now() + timedelta(seconds=shift["seconds"]))
    lease = get_settings().run_lease_seconds
    sid = deck_session(api)
    request_id = accept_only(api, sid, "Slow deck")
    lapsed: list[bool] = []

    class SlowToolInput:
        """Three leases of model time writing the tool's input (empty deltas only), then the deck."""

        def model_for(self, requested: str) -> str:
            return "scripted"

        def converse_stream(self, request: Any) -> Any:
            answered = bool(request.turns[-1].tool_results)
            deck = {"slides": [{"slide_id": "s1", "html": "<h1>Slow</h1>"}]}
            calls = () if answered else (ToolCall("t1", "write_slides", deck),)

            class Stream:
                reply = ModelReply("Done." if answered else "", "scripted", 1, 1, None, "end_turn", calls)

                def __iter__(self) -> Any:
                    if answered:
                        yield "Done."
                        return
                    for _ in range(30):
                        shift["seconds"] += lease / 10
                        yield ""
                        held = RunsRepo().get(sid, request_id) or {}
                        lapsed.append(int(held["lease_until"]) < timeutil.epoch_seconds(timeutil.now()))

                def close(self) -> None:
                    pass

            return Stream()

    run_once(sid, request_id, SlowToolInput())
    # Then the run's lease never lapsed while the model was silent, and the deck was written
    assert lapsed and not any(lapsed)
    run = finished(api, request_id)
    assert run["status"] == "completed", run
    assert deck_of(api, sid)["slide_deck"]["slides"][0]["html"] == "<h1>Slow</h1>"
