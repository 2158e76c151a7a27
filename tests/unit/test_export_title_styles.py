"""Slide titles take the deck's CSS as body text does, in PPTX and PDF; scripts, the deck's or a slide's, are never
in a document. Every file is read back with its own reader."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docx
import pypdf
import pytest
from pptx import Presentation
from pptx.enum.text import PP_ALIGN

sys.path.append(str(Path(__file__).resolve().parents[2] / "functions" / "exports"))

import render
from render.model import Para
from render.parse import parse_slide


def source(slides: list[dict[str, Any]], css: str = "", scripts: Any = None) -> dict[str, Any]:
    return {
        "session": {"session_id": "session_0123456789abcdef", "title": "Styled", "status": "active"},
        "deck": {"slides": slides, "css": css, "scripts": scripts or []},
        "deck_version": 1,
        "messages": [],
        "messages_truncated": False,
        "comments": [],
        "exported_at": "2026-01-15T10:30:00.000Z",
    }


@dataclass(frozen=True)
class Drawn:
    """A run as a reader sees it; `None` where the file says nothing (PowerPoint's default)."""

    text: str
    color: str | None
    size: float
    bold: bool | None = None
    italic: bool | None = None


def pptx_titles(data: bytes) -> list[tuple[Any, list[Drawn]]]:
    """Each slide's title placeholder: its alignment and runs."""
    titles = []
    for slide in Presentation(io.BytesIO(data)).slides:
        paragraph = slide.shapes.title.text_frame.paragraphs[0]
        runs = [
            Drawn(
                run.text,
                str(run.font.color.rgb) if run.font.color.type else None,
                run.font.size.pt,
                run.font.bold,
                run.font.italic,
            )
            for run in paragraph.runs
        ]
        titles.append((paragraph.alignment, runs))
    return titles


def pptx_body_runs(data: bytes, slide_index: int) -> list[Drawn]:
    slide = Presentation(io.BytesIO(data)).slides[slide_index]
    return [
        Drawn(run.text, str(run.font.color.rgb) if run.font.color.type else None, run.font.size.pt)
        for shape in slide.shapes
        if shape.has_text_frame and shape != slide.shapes.title
        for paragraph in shape.text_frame.paragraphs
        for run in paragraph.runs
    ]


class PdfPage:
    """A page's pieces of text, each with the fill colour it is drawn in and where it starts (x, in points)."""

    def __init__(self, page: pypdf.PageObject) -> None:
        self.drawn: list[tuple[Drawn, float]] = []
        self._colours = ["000000"]  # the graphics state: `q` saves it, `Q` restores it, `rg` sets the fill colour
        page.extract_text(visitor_operand_before=self._operator, visitor_text=self._text)

    def _operator(self, op: bytes, args: list[Any], cm: Any, tm: Any) -> None:
        if op == b"q":
            self._colours.append(self._colours[-1])
        elif op == b"Q":
            self._colours.pop()
        elif op == b"rg":
            self._colours[-1] = "".join(f"{round(float(part) * 255):02X}" for part in args)

    def _text(self, value: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if value.strip():
            self.drawn.append((Drawn(value.strip(), self._colours[-1], size), tm[4]))


def pdf_pages(data: bytes) -> list[list[tuple[Drawn, float]]]:
    return [PdfPage(page).drawn for page in pypdf.PdfReader(io.BytesIO(data)).pages]


# -- titles ---------------------------------------------------------------------------------------
RED, BLUE = "C0392B", "1F4E79"


@pytest.mark.parametrize(
    ("html", "css"),
    [
        ("<h1>Styled title</h1><p>body</p>", "h1 { color: #c0392b; font-size: 40px; font-style: italic }"),
        ("<h2>Styled title</h2><p>body</p>", "h2 { color: rgb(192, 57, 43); font-size: 30pt; font-style: oblique }"),
        ("<h1 class='lead'>Styled title</h1>", ".lead { color: #C0392B } h1.lead { font-size: 2.5rem } .x {}"),
        ("<h1 id='t'>Styled title</h1>", "#t { color: #c0392b; font-size: 40px } h1 { font-style: italic }"),
        ("<h1 style='color:#c0392b; font-size:40px'>Styled title</h1>", "h1 { color: blue; font-style: italic }"),
        ("<style>h1 { color: #c0392b; font-size: 40px }</style><h1>Styled title</h1>", ""),
    ],
    ids=["h1", "h2-only", "class", "id", "inline-style", "slide-style"],
)
def test_the_title_takes_the_colour_and_size_the_css_gives_its_heading(html: str, css: str) -> None:
    deck = source([{"slide_id": "s1", "html": html}], css)

    ((_, pptx_runs),) = pptx_titles(render.render("pptx", deck))
    (page,) = pdf_pages(render.render("pdf", deck))

    assert [(run.text, run.color, run.size) for run in pptx_runs] == [("Styled title", RED, 30.0)]
    (title, _), *_ = page
    assert (title.text, title.color, title.size) == ("Styled title", RED, 30.0)
    if "italic" in css or "oblique" in css:
        assert pptx_runs[0].italic


def test_spans_weight_and_alignment_in_the_heading_style_the_title_as_they_style_the_body() -> None:
    deck = source(
        [
            {"slide_id": "s1", "html": "<h1>Plain <span style='color:#1f4e79'>blue</span> <em>slanted</em></h1>"},
            {"slide_id": "s2", "html": "<h1 class='quiet'>Light and right</h1><p class='quiet'>body</p>"},
        ],
        "h1 { color: #c0392b; text-align: center } .quiet { font-weight: normal; text-align: right }",
    )
    pptx = render.render("pptx", deck)

    (first_align, first), (second_align, second) = pptx_titles(pptx)
    first_page, second_page = pdf_pages(render.render("pdf", deck))

    assert first_align == PP_ALIGN.CENTER
    assert [(run.text.strip(), run.color, run.italic) for run in first if run.text.strip()] == [
        ("Plain", RED, None),
        ("blue", BLUE, None),
        ("slanted", RED, True),
    ]
    assert all(run.bold for run in first), "a heading is bold unless its CSS says otherwise"
    assert second_align == PP_ALIGN.RIGHT and second[0].bold is None
    assert [(drawn.text, drawn.color) for drawn, _ in first_page[:3]] == [
        ("Plain", RED),
        ("blue", BLUE),
        ("slanted", RED),
    ]
    centred_x, right_x = first_page[0][1], second_page[0][1]
    assert 200 < centred_x < 480 and right_x > 600, "centred and right-aligned titles start past the left margin"


def test_an_unstyled_title_keeps_the_default_look() -> None:
    deck = source([{"slide_id": "s1", "html": "<h1>Plain title</h1><p>body</p>"}])

    ((align, runs),) = pptx_titles(render.render("pptx", deck))
    ((title, x), *_) = pdf_pages(render.render("pdf", deck))[0]

    assert align == PP_ALIGN.LEFT and runs == [Drawn("Plain title", None, 36.0, True, None)]
    assert (title, x) == (Drawn("Plain title", "000000", 36.0), 40.0)


def test_a_title_too_big_for_its_box_is_fitted_and_an_inherited_body_size_does_not_shrink_headings() -> None:
    deck = source(
        [
            {"slide_id": "s1", "html": "<h1 style='font-size:400px'>Huge</h1>"},
            {"slide_id": "s2", "html": "<div class='slide'><h2>Heading</h2><p>body</p></div>"},
        ],
        ".slide { font-size: 16px }",
    )

    (_, huge), (_, heading) = pptx_titles(render.render("pptx", deck))
    body = pptx_body_runs(render.render("pptx", deck), 1)

    assert huge[0].size == 36.0, "a size no title box holds falls back to the largest default that fits"
    assert heading[0].size == 36.0 and [(run.text, run.size) for run in body] == [("body", 12.0)]


@pytest.mark.parametrize(
    ("declaration", "size"),
    [("40px", 30.0), ("18pt", 18.0), ("1.5rem", 18.0), ("1px", 6.0), ("9000px", 200.0), ("2em", None), ("big", None)],
)
def test_font_size_is_read_in_points_within_bounds_and_a_unit_not_understood_sets_nothing(
    declaration: str, size: float | None
) -> None:
    slide = parse_slide("s1", 1, "<h1>Title</h1><p>text</p><li>item</li>", f"h1, p, li {{ font-size: {declaration} }}")

    assert slide.heading is not None and slide.heading.size == size
    assert [block.size for block in slide.blocks if isinstance(block, Para)] == [size, size]


# -- scripts --------------------------------------------------------------------------------------
def test_per_slide_scripts_are_never_in_a_document_and_are_noted_as_left_out() -> None:
    deck = source(
        [
            {"slide_id": "s1", "html": "<h1>One</h1><script>inlineSecret()</script><p>shown</p>"},
            {"slide_id": "s2", "html": "<h1>Two</h1><p>also shown</p>", "scripts": "window.slideSecret = 1"},
        ]
    )
    secrets = ("inlineSecret", "slideSecret")

    pptx = Presentation(io.BytesIO(render.render("pptx", deck)))
    pptx_text = " ".join(
        shape.text_frame.text for slide in pptx.slides for shape in slide.shapes if shape.has_text_frame
    )
    notes = [slide.notes_slide.notes_text_frame.text for slide in pptx.slides]
    pdf_text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render.render("pdf", deck))).pages)
    docx_text = " ".join(p.text for p in docx.Document(io.BytesIO(render.render("docx", deck))).paragraphs)
    markdown = render.render("markdown", deck).decode()
    exported = json.loads(render.render("json", deck))

    for text in (pptx_text, pdf_text, docx_text, markdown):
        assert "shown" in text and "also shown" in text
    for text in (pptx_text, " ".join(notes), pdf_text, docx_text, markdown):
        assert not any(secret in text for secret in secrets), text
    assert all("scripts" in note for note in notes), "a slide's scripts count as the deck's"
    assert exported["slide_deck"]["slides"][1]["scripts"] == "window.slideSecret = 1", "JSON keeps them as data"
    assert exported["notes"] == ["The deck's scripts are kept as data here and were never run."]


def test_blank_slide_scripts_are_no_scripts() -> None:
    deck = source([{"slide_id": "s1", "html": "<h1>One</h1>", "scripts": "  "}, {"slide_id": "s2", "html": "<p>x"}])

    notes = [
        slide.notes_slide.notes_text_frame.text
        for slide in Presentation(io.BytesIO(render.render("pptx", deck))).slides
    ]

    assert json.loads(render.render("json", deck))["notes"] == [] and not any("scripts" in note for note in notes)


# -- a deck as a model writes it ------------------------------------------------------------------
def generated_deck(slides: int = 40) -> dict[str, Any]:
    """Slide 1 a title and subtitle, then a heading and 3–5 bullets each, with the CSS a model writes."""
    deck = [{"slide_id": "slide_01", "html": "<h1>Title</h1><p>subtitle</p>"}]
    for number in range(2, slides + 1):
        bullets = "".join(f"<li>bullet {number}.{item}</li>" for item in range(1, 3 + number % 3 + 1))
        deck.append({"slide_id": f"slide_{number:02}", "html": f"<h2>Heading {number}</h2><ul>{bullets}</ul>"})
    return source(deck, "h1 { color: #1f4e79; font-size: 40px } h2 { color: #c0392b } li { font-size: 20px }")


def test_a_forty_slide_generated_deck_exports_with_styled_titles_to_pptx_and_pdf() -> None:
    deck = generated_deck()

    pptx = render.render("pptx", deck)
    pdf = render.render("pdf", deck)

    titles = pptx_titles(pptx)
    assert len(titles) == 40
    assert titles[0][1] == [Drawn("Title", BLUE, 30.0, True, None)]
    assert [runs for _, runs in titles[1:]] == [[Drawn(f"Heading {n}", RED, 36.0, True, None)] for n in range(2, 41)]
    bullets = pptx_body_runs(pptx, 39)
    assert [(run.text, run.size) for run in bullets] == [(f"bullet 40.{item}", 15.0) for item in range(1, 5)]
    pages = pdf_pages(pdf)
    assert len(pages) == 40
    assert pages[0][0][0] == Drawn("Title", BLUE, 30.0)
    assert [page[0][0] for page in pages[1:]] == [Drawn(f"Heading {n}", RED, 36.0) for n in range(2, 41)]
    assert Drawn("bullet 40.4", "000000", 15.0) in [drawn for drawn, _ in pages[39]]
