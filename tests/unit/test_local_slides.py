"""The local model's slide writing: a deterministic, reasonable deck from the message, through `write_slides`."""

from __future__ import annotations

import pytest

from sessions_api.agents import AGENTS, tools_of
from sessions_api.models.decks import SlideDeck
from sessions_api.providers import ModelRequest, ToolResult, Turn
from sessions_api.providers.local_echo import LocalEchoProvider, answer


def asked(*turns: Turn) -> ModelRequest:
    return ModelRequest("m", "Make decks.", list(turns), 16_000, tools=tools_of(AGENTS["slides"]))


def deck_for(message: str) -> dict:
    _, calls = answer(asked(Turn("user", message)))
    (call,) = calls
    assert call.name == "write_slides"
    return dict(call.input)


@pytest.mark.parametrize(
    ("message", "count"),
    [
        ("A deck on onboarding", 3),
        ("Make 5 slides about tides", 5),
        ("five slides about tides", 5),
        ("Make 12 short slides on tides", 12),
        ("One slide about tides", 1),
        ("Make 40 slides about computing", 40),
        ("Make 0 slides about nothing", 1),
    ],
)
def test_as_many_slides_as_the_message_asks_for_three_by_default(message: str, count: int) -> None:
    deck = deck_for(message)
    assert len(deck["slides"]) == count
    SlideDeck.model_validate(deck)  # what PUT /slides would accept


def test_asked_for_more_than_a_deck_holds_it_writes_one_slide_too_many() -> None:
    assert len(deck_for("Make 100000 slides about everything")["slides"]) == 501


def test_a_title_slide_then_headings_from_the_prompt_s_parts_each_with_bullets() -> None:
    deck = deck_for("Make 5 slides about solar, wind and hydro power")
    slides = [slide["html"] for slide in deck["slides"]]
    assert slides[0] == "<h1>Solar, wind and hydro power</h1><p>An overview in 5 slides</p>"
    assert [slide.split("</h2>")[0] for slide in slides[1:]] == [
        "<h2>Solar",
        "<h2>Wind",
        "<h2>Hydro power",
        "<h2>Why it matters",
    ]
    assert all(slide.count("<li>") == 3 for slide in slides[1:])
    assert [slide["slide_id"] for slide in deck["slides"]] == [f"slide-{n}" for n in range(1, 6)]
    assert "h1 {" in deck["css"] and deck["scripts"] == []


def test_the_same_message_makes_the_same_deck_and_text_is_escaped() -> None:
    assert deck_for("3 slides about <b>R&D</b>") == deck_for("3 slides about <b>R&D</b>")
    assert deck_for("3 slides about <b>R&D</b>")["slides"][0]["html"].startswith("<h1>&lt;b&gt;R&amp;D&lt;/b&gt;</h1>")


def test_slides_given_to_revise_keep_their_ids_and_headings() -> None:
    message = (
        "Make this about costs\n\n<slide_context>\nRevise only slides 1 to 2\n"
        '<slide index="1" id="s-2">\n<h2>Solar &amp; storage</h2><ul><li>old</li></ul>\n</slide>\n'
        '<slide index="2" id="s-3">\n<p>no heading</p>\n</slide>\n</slide_context>'
    )
    text, (call,) = answer(asked(Turn("user", message)))
    assert text == "Revising 2 slides.\n\n"
    revised = call.input["slides"]
    assert [slide["slide_id"] for slide in revised] == ["s-2", "s-3"]
    assert revised[0]["html"].startswith("<h2>Solar &amp; storage</h2>") and "costs" in revised[0]["html"]
    assert revised[1]["html"].startswith("<h2>Slide 3</h2>")


def test_after_the_tool_answers_the_model_says_what_it_made_or_tries_once_more() -> None:
    first = Turn("user", "Make 2 slides about tides")
    _, (call,) = answer(asked(first))
    said = Turn("assistant", "Writing.", (call,))
    written = {"status": "written", "version": 4, "slide_count": 2, "titles": ["Tides", "Why it matters"]}
    text, calls = answer(asked(first, said, Turn("user", "", tool_results=(ToolResult(call.call_id, written),))))
    assert (text, calls) == ("The deck has 2 slides: Tides; Why it matters.", ())
    conflict = {"status": "conflict", "code": "deck_conflict", "error": "changed"}
    text, calls = answer(asked(first, said, Turn("user", "", tool_results=(ToolResult(call.call_id, conflict, True),))))
    assert calls == () and "left their version" in text
    refused = {"status": "refused", "code": "invalid_deck", "error": "too many"}
    _, again = answer(asked(first, said, Turn("user", "", tool_results=(ToolResult(call.call_id, refused, True),))))
    assert [retry.input for retry in again] == [call.input]


def test_without_the_tool_the_local_model_only_echoes() -> None:
    request = ModelRequest("m", "", [Turn("user", "Make 5 slides about tides")], 100)
    reply = LocalEchoProvider().converse(request)
    assert reply.tool_calls == () and reply.text.startswith("Echo: Make 5 slides")
