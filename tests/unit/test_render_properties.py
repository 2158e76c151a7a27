"""Property: whatever HTML and CSS a deck holds, every format renders it to a document, or refuses it with
`DeckTooComplex` (the exports function's 422) — never another exception, and never slowly."""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import docx
import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pptx import Presentation

sys.path.append(str(Path(__file__).resolve().parents[2] / "functions" / "exports"))

import render
from render.parse import _BLOCKS, _LEFT_OUT, _SKIPPED, _VOID  # the tags the parser treats each its own way

# Each format's file read back with its own reader: the property is a document, not just bytes.
READERS = {
    "pptx": lambda data: len(Presentation(io.BytesIO(data)).slides),
    "pdf": lambda data: len(pypdf.PdfReader(io.BytesIO(data)).pages),
    "docx": lambda data: len(docx.Document(io.BytesIO(data)).paragraphs),
    "markdown": lambda data: len(data.decode()),
    "json": lambda data: len(json.loads(data)),
}
FORMATS = tuple(READERS)


def png(**save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 12), (20, 120, 60)).save(buffer, "PNG", **save)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_without_iend() -> bytes:
    """Pillow opens it; python-docx's own PNG reader runs off its end."""
    return png()[:-12]


def png_with_zero_dpi() -> bytes:
    """Pillow opens it; python-docx divides by its 0 dots per inch."""
    valid = png()
    after_ihdr = 8 + 25
    return valid[:after_ihdr] + png_chunk(b"pHYs", struct.pack(">IIB", 1, 1, 1)) + valid[after_ihdr:]


def data_uri(raw: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, "GIF")
    return buffer.getvalue()


IMAGE_SOURCES = [
    data_uri(png()),
    data_uri(png_without_iend()),
    data_uri(png_with_zero_dpi()),
    data_uri(gif(), "gif"),
    "data:image/png;base64,AAAA",
    "data:image/png;base64,!!not base64!!",
    "data:text/html,<script>x</script>",
    "https://tracker.example/pixel.png",
    "",
]
KNOWN_TAGS = sorted(_BLOCKS | _VOID | _SKIPPED | set(_LEFT_OUT))
INLINE_TAGS = ["b", "strong", "i", "em", "u", "a", "span", "cite", "center", "code", "small", "sup"]
UNKNOWN_TAGS = ["x-widget", "blink", "foo", "my-el", "o:p"]
CLASSES = ["a", "b", "lead", "hot", "c1", "-x", "_"]
DECLARATIONS = [
    "color: red", "color: #abc", "color: #A1B2C3", "color: rgb(300, 2, 3)", "color: rgba(1,2,3,0.5)", "color: ²",
    "color: rgb(" + "9" * 5000 + ",0,0)", "text-align: center", "text-align: justify", "text-align: sideways",
    "font-weight: 700", "font-weight: bolder", "font-weight: ²", "font-weight: " + "9" * 5000, "font-style: italic",
    "text-decoration: underline", "text-decoration-line: none", "color:", ":", "!important", "font-weight: 100 !important",
]  # fmt: skip
# Text with what trips writers: markup characters, entities (control characters among them), wide and
# combining characters, right-to-left, emoji, non-characters, lone `<`, and long words.
TEXT = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list("ab <>&;#/\"'=\n\t\r -—€é字ٱ\u0301\u202e\u200b\ufffd😀\ufeff")),
            st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        ),
        max_size=30,
    ),
    st.sampled_from(["&#12;", "&#0;", "&#x1b;", "&#xFFFE;", "&#x10FFFF;", "&amp;", "&bogus;", "&#99999999999;"]),
    st.sampled_from(["<", "</", "<!--", "<![", "<!", "<?", "<a", "-->", "]]>", "<!DOCTYPE html>", "</p></p>"]),
    st.integers(1, 1_200).map(lambda length: "é" * length),
)


def attributes(tag: str) -> st.SearchStrategy[str]:
    single = st.one_of(
        st.builds(lambda names: f" class='{' '.join(names)}'", st.lists(st.sampled_from(CLASSES), max_size=3)),
        st.builds(lambda name: f" id='{name}'", st.sampled_from(CLASSES)),
        st.builds(lambda parts: f' style="{"; ".join(parts)}"', st.lists(st.sampled_from(DECLARATIONS), max_size=3)),
        st.sampled_from(
            [" onclick='go()'", " href='https://example.com/x'", " href='javascript:go()'", " title='a<b'"]
        ),
        st.sampled_from([" start='3'", " start='²'", " start='" + "9" * 30 + "'", " start=''", " hidden", " =x"]),
    )
    if tag == "img":
        single = st.one_of(
            single,
            st.builds(lambda src: f" src='{src}'", st.sampled_from(IMAGE_SOURCES)),
            st.builds(lambda alt: f" alt='{alt}'", st.sampled_from(["chart", "", "é" * 50, "a" * 2_000])),
        )
    return st.lists(single, max_size=3).map("".join)


@st.composite
def element(draw: st.DrawFn, children: st.SearchStrategy[list[str]]) -> str:
    tag = draw(st.sampled_from(KNOWN_TAGS + INLINE_TAGS + UNKNOWN_TAGS))
    opening = f"<{tag}{draw(attributes(tag))}>"
    if tag in _VOID:
        return opening
    closing = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", f"</{tag.upper()}>", "</div>"]))
    return opening + "".join(draw(children)) + closing


def table(cells: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    row = st.lists(cells.map(lambda text: f"<td>{text}</td>"), max_size=6).map(lambda tds: "<tr>" + "".join(tds))
    return st.lists(row, max_size=6).map(lambda rows: "<table>" + "".join(rows) + "</table>")


def image(src: str, alt: str) -> str:
    return f"<img src='{src}' alt='{alt}'>"


def nested(tag: str, depth: int) -> str:
    return f"<{tag}>x" * depth


def grid(rows: int, columns: int) -> str:
    return "<table>" + ("<tr>" + "<td>cell text</td>" * columns) * rows + "</table>"


def rule(selectors: list[str], body: list[str]) -> str:
    return f"{', '.join(selectors)} {{ {'; '.join(body)} }}"


def compound(tag: str, names: list[str]) -> str:
    return tag + "".join("." + name for name in names)


def many_rules(count: int) -> str:
    return "".join(f".c{index} p.a{index % 50} {{ color: red }}" for index in range(count))


IMAGE = st.builds(image, st.sampled_from(IMAGE_SOURCES), st.sampled_from(["chart", "", "é" * 50]))
# Bulk that was once quadratic somewhere (deep nesting, lone `<a`, many runs) and tables and words about the caps.
BULK = st.one_of(
    st.builds(nested, st.sampled_from(["b", "div", "li", "ul", "pre", "td", "p"]), st.integers(100, 3_000)),
    st.integers(100, 20_000).map(lambda count: "<a" * count),
    st.integers(100, 5_000).map(lambda count: "<b>x</b>y" * count),
    st.builds(grid, st.integers(1, 60), st.integers(1, 50)),
    st.builds(lambda length, char: char * length, st.integers(900, 1_100), st.sampled_from(["é", "字", "w"])),
)
MARKUP = st.recursive(
    st.one_of(TEXT, IMAGE),
    lambda children: st.one_of(element(st.lists(children, max_size=4)), table(children)),
    max_leaves=40,
)
SELECTORS = st.one_of(
    st.sampled_from(["p", "h1", "li", "td", "a", "*", "div > p", "p:hover", "@media screen", "", "#", "."]),
    st.builds(compound, st.sampled_from(["", "p", "span"]), st.lists(st.sampled_from(CLASSES), min_size=1, max_size=3)),
    st.builds(lambda name: f"#{name}", st.sampled_from(CLASSES)),
)
RULE = st.builds(rule, st.lists(SELECTORS, min_size=1, max_size=3), st.lists(st.sampled_from(DECLARATIONS), max_size=3))
GARBAGE_CSS = st.sampled_from(["/* unclosed", "}", "{", "@media print { p { color: red } }", "p { x"])
CSS = st.one_of(
    st.lists(st.one_of(RULE, GARBAGE_CSS), max_size=6).map("\n".join),
    st.integers(1_500, 2_500).map(many_rules),  # about the cap on selectors
)


@st.composite
def decks(draw: st.DrawFn) -> dict[str, Any]:
    slides = []
    for number in range(draw(st.integers(1, 3))):
        html = "".join(draw(st.lists(st.one_of(MARKUP, BULK) if number == 0 else MARKUP, min_size=1, max_size=5)))
        if draw(st.booleans()):
            html = f"<style>{draw(CSS)}</style>" + html
        slides.append({"slide_id": f"s{number}", "html": html})
    return {"slides": slides, "css": draw(CSS), "scripts": draw(st.sampled_from([[], ["go()"], "init()"]))}


def source(deck: dict[str, Any]) -> dict[str, Any]:
    return {
        "session": {"session_id": "session_0123456789abcdef", "title": "Property", "status": "active"},
        "deck": deck,
        "deck_version": 1,
        "messages": [{"message_id": "m1", "role": "user", "content": "hi", "created_at": "2026-01-15T10:30:00Z"}],
        "messages_truncated": False,
        "comments": [],
        "exported_at": "2026-01-15T10:30:00.000Z",
    }


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Imports and fonts load once, outside the per-example deadline."""
    for export_format in FORMATS:
        render.render(export_format, source({"slides": [{"slide_id": "w", "html": "<p><b>warm</b> <i>up</i></p>"}]}))


def outcome(export_format: str, deck: dict[str, Any]) -> bytes | render.DeckTooComplex:
    try:
        return render.render(export_format, source(deck))
    except render.DeckTooComplex as refused:
        return refused


@settings(
    max_examples=60,
    deadline=5_000,  # milliseconds per deck for all five formats: far above what any deck within the caps needs
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(deck=decks())
def test_every_format_renders_any_markup_or_refuses_it_as_too_complex(deck: dict[str, Any]) -> None:
    for export_format in FORMATS:
        result = outcome(export_format, deck)
        if isinstance(result, render.DeckTooComplex):
            assert export_format != "json", "JSON carries the deck as data and is never refused"
            assert result.slide_id in {slide["slide_id"] for slide in deck["slides"]}
            assert str(result).startswith(f"Slide {result.slide_number} ({result.slide_id}): ")
        else:
            assert READERS[export_format](result), export_format
