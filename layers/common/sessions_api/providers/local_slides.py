"""The local model's slide writing: a deterministic, reasonable deck made from the message, through the
`write_slides` tool as a real model would call it, so prompt → deck → PPTX runs offline and in tests.

"Make 5 slides about solar, wind and hydro power" gives a title slide and four content slides, their
headings drawn from the prompt's parts (then general ones), each with a few bullets. As many slides as the
message asks for ("5 slides", "five slides"), 3 by default. Slides given to revise (`<slide …>` blocks in
the message, as the chat worker writes them) keep their heading and take bullets from the request.
"""

from __future__ import annotations

import html
import re
from typing import Any

from sessions_api.models.decks import MAX_SLIDES
from sessions_api.providers import ModelRequest, ToolCall

DEFAULT_SLIDES = 3
DECK_CSS = (
    "h1 { color: #1f4e79; font-size: 40px; }\n"
    "h2 { color: #1f4e79; font-size: 30px; }\n"
    "p { color: #555555; font-size: 20px; }\n"
    "li { font-size: 20px; }"
)
_NUMBER_WORDS = {
    word: number
    for number, word in enumerate(
        ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"], start=1
    )
}
_COUNT = re.compile(r"\b(\d{1,6}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:[a-z-]+\s+){0,2}?slides?\b", re.IGNORECASE)
_TOPIC = re.compile(r"\b(?:about|on|covering|for)\s+(.+)", re.IGNORECASE | re.DOTALL)
_PARTS = re.compile(r"\s*(?:,|;|\band\b|&)\s*", re.IGNORECASE)
_MARKER = re.compile(r"\[stream \d+\]")
_GIVEN_SLIDE = re.compile(r'<slide index="(\d+)" id="([^"]+)">\n?(.*?)\n?</slide>', re.DOTALL)
_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Headings after the prompt's own parts, with their bullets ({topic} is the prompt's)
_GENERAL_SLIDES = {
    "Why it matters": ("Who {topic} affects", "What changes because of it", "What it costs to ignore"),
    "Key facts": ("The numbers behind {topic}", "What has changed recently", "What is still uncertain"),
    "Challenges": ("What makes {topic} hard", "Risks to watch", "What others got wrong"),
    "Opportunities": ("Where {topic} can grow", "Quick wins", "Longer bets"),
    "Next steps": ("Decide what to do first", "Name an owner for each step", "Review progress in a month"),
    "Summary": ("{topic} in one sentence", "Three things to remember", "Questions for discussion"),
}
_PART_BULLETS = ("What {heading} is", "Where {heading} stands today", "What {heading} means for {topic}")


def slide_call(request: ModelRequest, call_id: str) -> tuple[str, ToolCall]:
    """What the model says, and the `write_slides` call it makes, for the request's last user turn."""
    message = request.turns[-1].text
    asked, _, context = message.partition("\n\n<slide_context>")
    given = _GIVEN_SLIDE.findall(context)
    if given:
        slides = [_revised(int(index), slide_id, body, _topic(asked)) for index, slide_id, body in given]
        return f"Revising {_count(len(slides))}.\n\n", ToolCall(call_id, "write_slides", {"slides": slides})
    topic = _topic(asked)
    deck = deck_for(topic, _asked_count(asked))
    return f"Writing a {len(deck['slides'])}-slide deck on {topic}.\n\n", ToolCall(call_id, "write_slides", deck)


def deck_for(topic: str, count: int) -> dict[str, Any]:
    """A title slide, then `count - 1` content slides."""
    parts = [part.strip() for part in _PARTS.split(topic) if part.strip()]
    headings = [part[:1].upper() + part[1:] for part in parts] if len(parts) > 1 else []
    headings += [heading for heading in _GENERAL_SLIDES if heading not in headings]
    title = topic[:1].upper() + topic[1:]
    slides = [
        {
            "slide_id": "slide-1",
            "html": f"<h1>{_escaped(title)}</h1><p>An overview in {_count(count)}</p>",
        }
    ]
    for number in range(2, count + 1):
        index = number - 2
        heading = headings[index] if index < len(headings) else f"{title}: part {number - 1}"
        slides.append({"slide_id": f"slide-{number}", "html": _content_slide(heading, topic)})
    return {"slides": slides, "css": DECK_CSS, "scripts": []}


def summary(output: dict[str, Any]) -> str:
    """What the model says once the tool has answered."""
    if output.get("status") == "written":
        titles = "; ".join(output.get("titles", [])[:12])
        replaced = output.get("replacement_info")
        if replaced:
            first = replaced["start_index"] + 1
            return f"I revised slide{'s' if replaced['original_count'] > 1 else ''} from {first}: {titles}."
        return f"The deck has {_count(output.get('slide_count', 0))}: {titles}."
    if output.get("status") == "conflict":
        return (
            "Someone changed the deck while I was writing it, so I left their version as it is. "
            "Ask again and I will write it from the deck as it is now."
        )
    return f"I could not write the deck: {output.get('error', 'the tool refused it')}."


def _revised(index: int, slide_id: str, body: str, topic: str) -> dict[str, Any]:
    found = _HEADING.search(body[:4096])  # the heading is near the top; the pattern costs more on long input
    heading = html.unescape(_TAG.sub("", found[1])).strip() if found else f"Slide {index + 1}"
    return {"slide_id": slide_id, "html": _content_slide(heading, topic)}


def _content_slide(heading: str, topic: str) -> str:
    bullets = _GENERAL_SLIDES.get(heading, _PART_BULLETS)
    filled = (bullet.format(heading=heading.lower(), topic=topic) for bullet in bullets)
    items = "".join(f"<li>{_escaped(bullet[:1].upper() + bullet[1:])}</li>" for bullet in filled)
    return f"<h2>{_escaped(heading)}</h2><ul>{items}</ul>"


def _topic(message: str) -> str:
    text = " ".join(_MARKER.sub("", message).split())
    found = _TOPIC.search(text)
    topic = (found[1] if found else text).strip().rstrip(".!?")
    return topic[:120] or "Your topic"


def _asked_count(message: str) -> int:
    found = _COUNT.search(message)
    if not found:
        return DEFAULT_SLIDES
    word = found[1].lower()
    # Output is bounded, as a real model's is: past the deck's limit it writes one slide too many, to be refused.
    return _NUMBER_WORDS[word] if word in _NUMBER_WORDS else min(max(int(word), 1), MAX_SLIDES + 1)


def _count(slides: int) -> str:
    return f"{slides} slide{'s' if slides != 1 else ''}"


def _escaped(text: str) -> str:
    return html.escape(text, quote=False)
