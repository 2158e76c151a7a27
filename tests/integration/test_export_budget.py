"""Exports have a budget: a deck at each cap of `render.limits` exports, one past it is a 422 naming the slide
and stores nothing, the decks that once ran until the function was killed answer at once, and an image one
writer cannot read costs that image alone. In-process with moto. Given / When / Then."""

from __future__ import annotations

import base64
import io
import struct
import sys
import zlib
from typing import Any

import docx
import pypdf
import pytest
from PIL import Image
from pptx import Presentation

from tests.conftest import all_items
from tests.integration.test_exports import export, file_of, s3_keys
from tests.support import Api, function_specs

sys.path.append(str(function_specs()["ExportsFunction"].code_dir))  # Lambda's code directory: the render package
from render import limits

BASE = "/api/v1/sessions"
DOCUMENT_FORMATS = ("pptx", "pdf", "docx", "markdown")
FORMATS = (*DOCUMENT_FORMATS, "json")
MAX_TABLE_CELLS, MAX_WORD_CHARS, MAX_CSS_SELECTORS = (
    limits.MAX_TABLE_CELLS,
    limits.MAX_WORD_CHARS,
    limits.MAX_CSS_SELECTORS,
)
MAX_DECK_NODES, MAX_DECK_PICTURES, MAX_DECK_PIXELS = (
    limits.MAX_DECK_NODES,
    limits.MAX_DECK_PICTURES,
    limits.MAX_DECK_PIXELS,
)


def png(width: int = 40, height: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def img(raw: bytes, alt: str) -> str:
    return f"<img src='{data_uri(raw)}' alt='{alt}'>"


def grid(rows: int, columns: int) -> str:
    return "<table>" + ("<tr>" + "<td>c</td>" * columns) * rows + "</table>"


def css(selectors: int, prefix: str) -> str:
    return "".join(f".{prefix}{index}{{color:#123456}}" for index in range(selectors))


def session_with(api: Api, slides: list[str], deck_css: str = "") -> str:
    """A session whose deck is these slides' HTML, with ids s1, s2, …"""
    sid = api.create_session(title="Budget")["session_id"]
    deck = {"slides": [{"slide_id": f"s{number}", "html": html} for number, html in enumerate(slides, 1)]}
    assert api("PUT", f"{BASE}/{sid}/slides", body={**deck, "css": deck_css}).status == 200
    return sid


def refused(api: Api, sid: str, table: Any, **kwargs: Any) -> list[str]:
    """Every document format refused with a 422 that names the slide; nothing stored. The details."""
    before = all_items(table)
    details = []
    for export_format in DOCUMENT_FORMATS:
        result = api("POST", f"{BASE}/{sid}/export", body={"format": export_format}, **kwargs)
        assert result.status == 422, (export_format, result.body)
        problem = result.problem
        assert problem["code"] == "validation_error" and problem["status"] == 422
        assert problem["errors"][0]["field"].startswith("slide_deck.slides.")
        assert problem["detail"] == problem["errors"][0]["message"]
        details.append(problem["detail"])
    assert all_items(table) == before, "no export record, no history event, no session change"
    assert not [key for key in s3_keys() if f"/{sid}/exports/" in key]
    assert api("GET", f"{BASE}/{sid}/exports").body["exports"] == []
    assert len(set(details)) == 1, "every format says the same"
    return details


# -- each cap: at it the deck exports, one past it is refused -------------------------------------
def test_a_table_of_as_many_cells_as_the_cap_exports_and_one_more_cell_is_refused(api: Api, table: Any) -> None:
    at_cap = session_with(api, ["<h1>Intro</h1>", "<h1>Grid</h1>" + grid(40, MAX_TABLE_CELLS // 40)])
    for export_format in DOCUMENT_FORMATS:
        export(api, at_cap, export_format)
    deck = Presentation(io.BytesIO(file_of(export(api, at_cap, "pptx"))))
    drawn = next(shape.table for shape in deck.slides[1].shapes if shape.has_table)
    assert len(drawn.rows) * len(drawn.columns) == MAX_TABLE_CELLS

    # A short row is padded to the widest: cells are counted on the grid every format draws
    over = session_with(api, ["<h1>Intro</h1>", "<h1>Grid</h1>" + grid(40, 50).replace("<tr>", "<tr><td>x</td>", 1)])
    (detail, *_) = refused(api, over, table)
    assert detail == "Slide 2 (s2): a table has 2,040 cells (40 rows × 51 columns); at most 2,000 are exported"


def test_a_word_of_as_many_characters_as_the_cap_exports_and_one_more_is_refused(api: Api, table: Any) -> None:
    word = "é" * MAX_WORD_CHARS  # characters, not bytes: é is two in UTF-8
    at_cap = session_with(api, [f"<h1>Long</h1><p>a {word} b</p>"])
    for export_format in DOCUMENT_FORMATS:
        export(api, at_cap, export_format)
    assert word in file_of(export(api, at_cap, "markdown")).decode()
    paragraphs = docx.Document(io.BytesIO(file_of(export(api, at_cap, "docx")))).paragraphs
    assert any(word in paragraph.text for paragraph in paragraphs)

    over = session_with(api, ["<p>fine</p>", f"<p>a <b>{'字' * 600}</b>{'字' * 401} b</p>"])  # one word over two runs
    (detail, *_) = refused(api, over, table)
    assert detail == (
        "Slide 2 (s2): a word is 1,001 characters long with no space to break it; at most 1,000 are exported"
    )


def test_as_many_css_selectors_as_the_cap_export_and_one_more_is_refused(api: Api, table: Any) -> None:
    deck_css = css(1_500, "d") + "h1, h2 {}"  # a rule of two selectors counts two
    at_cap = session_with(
        api, [f"<style>{css(MAX_CSS_SELECTORS - 1_502, 's')}</style><p class='s3 d7'>styled</p>"], deck_css
    )
    for export_format in DOCUMENT_FORMATS:
        export(api, at_cap, export_format)
    runs = [
        run
        for shape in Presentation(io.BytesIO(file_of(export(api, at_cap, "pptx")))).slides[0].shapes
        if shape.has_text_frame
        for paragraph in shape.text_frame.paragraphs
        for run in paragraph.runs
    ]
    assert [str(run.font.color.rgb) for run in runs if run.text == "styled"] == ["123456"]

    # The deck's css and the slide's <style> count together
    over = session_with(
        api, ["<p>plain</p>", f"<style>{css(MAX_CSS_SELECTORS - 1_501, 's')}</style><p>x</p>"], deck_css
    )
    (detail, *_) = refused(api, over, table)
    assert detail == (
        "Slide 2 (s2): the deck's css and this slide's <style> have 2,001 CSS selectors; at most 2,000 are exported"
    )


def test_as_many_tags_and_pieces_of_text_as_the_cap_export_and_one_more_is_refused(api: Api, table: Any) -> None:
    slide = "<p>x</p>" * 150  # a tag and a piece of text each: 300 a slide
    at_cap = session_with(api, [slide] * (MAX_DECK_NODES // 300))
    assert file_of(export(api, at_cap, "markdown")).decode().count("\nx\n") == MAX_DECK_NODES // 2

    over = session_with(api, [slide] * (MAX_DECK_NODES // 300) + ["<p>x"])
    (detail, *_) = refused(api, over, table)
    assert detail == (
        "Slide 101 (s101): the slides up to this one hold 30,002 tags and pieces of text; "
        "a deck is exported with at most 30,000"
    )


def test_as_many_pictures_as_the_cap_export_and_one_more_is_refused(api: Api, table: Any) -> None:
    picture = img(png(2, 2), "dot")
    at_cap = session_with(api, [picture * 100] * (MAX_DECK_PICTURES // 100))
    assert file_of(export(api, at_cap, "markdown")).decode().count("![dot](data:image/png") == MAX_DECK_PICTURES

    over = session_with(api, [picture * 100] * (MAX_DECK_PICTURES // 100) + [picture])
    (detail, *_) = refused(api, over, table)
    assert detail == (
        "Slide 11 (s11): the slides up to this one hold 1,001 pictures; a deck is exported with at most 1,000"
    )


def test_as_many_pixels_as_the_cap_export_and_one_more_is_refused(api: Api, table: Any) -> None:
    big = img(png(5_000, 5_000), "big")  # a flat colour: 25 million pixels in a few kilobytes
    at_cap = session_with(api, [big, big])
    pdf = pypdf.PdfReader(io.BytesIO(file_of(export(api, at_cap, "pdf"))))
    assert [len(page.images) for page in pdf.pages] == [1, 1]

    over = session_with(api, [big, big + img(png(1, 1), "one more")])
    (detail, *_) = refused(api, over, table)
    assert detail == (
        "Slide 2 (s2): the slides up to this one hold 50,000,001 pixels in pictures; "
        "a deck is exported with at most 50,000,000"
    )


# -- the decks that once ran until the function was killed ----------------------------------------
@pytest.mark.parametrize(
    ("slides", "deck_css", "reason"),
    [
        (["<p>" + "a" * 199_000 + "</p>"], "", "a word is 199,000 characters long"),
        ([grid(1_900, 10)], "", "a table has 19,000 cells (1,900 rows × 10 columns)"),
        (["<p class='c1'>x</p>"], css(9_000, "c"), "have 9,000 CSS selectors"),
    ],
    ids=["199,000-character word", "19,000-cell table", "9,000 CSS rules"],
)
def test_a_deck_that_once_timed_out_is_refused_but_still_exports_as_json(
    api: Api, table: Any, slides: list[str], deck_css: str, reason: str
) -> None:
    sid = session_with(api, slides, deck_css)
    (detail, *_) = refused(api, sid, table, headers={"Idempotency-Key": "budget-1"})
    assert detail.startswith("Slide 1 (s1): ") and reason in detail
    # JSON carries the deck as data, never rendered: the owner can always take it out
    assert export(api, sid, "json")["slide_count"] == len(slides)


def ordinary(number: int) -> str:
    return (
        f"<h1>Slide {number}: results — résumé €</h1><p class='lead'>Revenue grew <b>{number} %</b> while "
        f"<i>costs</i> stayed flat; see <a href='https://example.com/{number}'>the report</a>.</p>"
        "<ul><li>Europe ≥ 5 %<ul><li>Nordics</li></ul></li><li>Americas</li></ul>"
        "<table><tr><th>Region</th><th>Q1</th></tr><tr><td>EU</td><td>1.2</td></tr></table>"
    )


def test_five_hundred_ordinary_slides_export_as_pptx(api: Api) -> None:
    sid = session_with(api, [ordinary(number) for number in range(1, 501)], ".lead { color: navy }")
    result = export(api, sid, "pptx")
    assert result["slide_count"] == 500 and len(Presentation(io.BytesIO(file_of(result))).slides) == 500


def test_a_hundred_ordinary_slides_export_in_every_format(api: Api) -> None:
    sid = session_with(api, [ordinary(number) for number in range(1, 101)], ".lead { color: navy }")
    for export_format in FORMATS:
        assert export(api, sid, export_format)["slide_count"] == 100


# -- an image one writer cannot read --------------------------------------------------------------
def png_without_iend() -> bytes:
    """Pillow reads it; python-docx's own PNG reader runs off its end."""
    return png()[:-12]


def png_with_zero_dpi() -> bytes:
    """Pillow reads it; python-docx divides by its 0 dots per inch."""
    valid, after_header = png(), 8 + 25
    body = b"pHYs" + struct.pack(">IIB", 1, 1, 1)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return valid[:after_header] + chunk + valid[after_header:]


def test_an_image_python_docx_cannot_read_becomes_its_alt_text_in_docx_alone(api: Api) -> None:
    sid = session_with(
        api, [img(png(), "good") + img(png_without_iend(), "chart one") + img(png_with_zero_dpi(), "chart two")]
    )
    document = docx.Document(io.BytesIO(file_of(export(api, sid, "docx"))))
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert "[image: chart one]" in text and "[image: chart two]" in text
    assert len(document.inline_shapes) == 1, "the good picture is still there"
    pptx_pictures = [
        shape
        for shape in Presentation(io.BytesIO(file_of(export(api, sid, "pptx")))).slides[0].shapes
        if shape.shape_type == 13
    ]
    assert len(pptx_pictures) == 3, "python-pptx reads all three"
    assert len(pypdf.PdfReader(io.BytesIO(file_of(export(api, sid, "pdf")))).pages[0].images) == 3
    assert file_of(export(api, sid, "markdown")).decode().count("](data:image/png;base64,") == 3


@pytest.mark.parametrize(
    ("export_format", "writer"), [("pptx", "pptx.shapes.shapetree.SlideShapes.add_picture"), ("pdf", "fpdf.FPDF.image")]
)
def test_an_image_the_pptx_or_pdf_writer_rejects_becomes_its_alt_text(
    api: Api, monkeypatch: pytest.MonkeyPatch, export_format: str, writer: str
) -> None:
    def rejects(*_: Any, **__: Any) -> None:
        raise ValueError("unreadable image")

    monkeypatch.setattr(writer, rejects)
    sid = session_with(api, ["<h1>Chart</h1><p>Before</p>" + img(png(), "sales chart")])
    data = file_of(export(api, sid, export_format))
    if export_format == "pptx":
        slide = Presentation(io.BytesIO(data)).slides[0]
        texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
        assert "[image: sales chart]" in texts and "Before" in texts and slide.shapes.title.text == "Chart"
    else:
        text = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
        assert "[image: sales chart]" in text and "Before" in text
