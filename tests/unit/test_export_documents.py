"""The pieces of an export that need no AWS: safe file names, and slide HTML read into the slide model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sessions_api.logic.exports import content_disposition, file_name, format_from_accept
from sessions_api.models.decks import ExportFormat

sys.path.append(str(Path(__file__).resolve().parents[2] / "functions" / "exports"))

from render.model import Para, Picture, Table
from render.parse import parse_deck, parse_slide


@pytest.mark.parametrize(
    ("title", "ascii_name", "unicode_name"),
    [
        ("Plan", "Plan.pdf", "Plan.pdf"),
        ('Q3 "plan"; filename=evil.exe', "Q3 plan filename=evil.exe.pdf", "Q3 plan filename=evil.exe.pdf"),
        ("../../etc/passwd", "etc passwd.pdf", "etc passwd.pdf"),
        ("Café — €5", "Cafe - EUR5.pdf", "Café — €5.pdf"),
        ("日本語", "session.pdf", "日本語.pdf"),
        ("...", "session.pdf", "session.pdf"),
        ("invoice\u202efdp.exe", "invoice fdp.exe.pdf", "invoice fdp.exe.pdf"),
        ("100%20off", "100 20off.pdf", "100 20off.pdf"),
    ],
)
def test_file_names_are_safe(title: str, ascii_name: str, unicode_name: str) -> None:
    assert file_name(title, "pdf") == (ascii_name, unicode_name)
    header = content_disposition(title, "pdf")
    assert header.startswith(f'attachment; filename="{ascii_name}"')
    assert header.count('"') == 2 and "\r" not in header and "\n" not in header
    assert all(32 <= ord(char) < 127 for char in header), "a header value is plain ASCII"


def test_accept_names_a_format_by_its_file_type_but_json_stays_the_api_s_own() -> None:
    assert format_from_accept("application/pdf") is ExportFormat.PDF
    assert format_from_accept("text/html, text/markdown;q=0.9") is ExportFormat.MARKDOWN
    assert format_from_accept("application/json") is None
    assert format_from_accept("*/*") is None and format_from_accept(None) is None


def test_a_slide_becomes_title_paragraphs_lists_tables_and_pictures() -> None:
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    slide = parse_slide(
        "s1",
        1,
        "<style>.warn{color:red;text-align:center}</style><h2>Sub</h2><h1>Main &amp; title</h1>"
        "<p class='warn'>Careful <strong>now</strong></p>"
        "<ol start='3'><li>three<ul><li>deep</li></ul></li><li>four</li></ol>"
        "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1<br>2</td></tr></table>"
        f"<img src='{pixel}' alt='dot'><img src='https://tracker.example/x.png' alt='remote'>"
        "<iframe src='https://example.com'></iframe><form><input name='q'><button>Send</button></form>",
        "h2 { color: #00f }",
    )
    assert slide.title == "Main & title"
    paras = [block for block in slide.blocks if isinstance(block, Para)]
    assert paras[0].text == "Sub" and paras[0].runs[0].color == "0000FF"
    warn = paras[1]
    assert (warn.text, warn.align, warn.runs[0].color, warn.runs[1].bold) == ("Careful now", "center", "FF0000", True)
    assert [(p.text, p.marker, p.level) for p in paras if p.kind == "li"] == [
        ("three", "3.", 0),
        ("deep", "•", 1),
        ("four", "4.", 0),
    ]
    (table,) = [block for block in slide.blocks if isinstance(block, Table)]
    assert table.has_header and [[cell.text for cell in row] for row in table.rows] == [["k", "v"], ["a", "1\n2"]]
    (picture,) = [block for block in slide.blocks if isinstance(block, Picture)]
    assert (picture.width_px, picture.height_px, picture.alt) == (1, 1, "dot")
    assert "[image: remote]" in paras[-1].text
    assert {"an embedded frame", "form fields", "buttons", "a form"} <= set(slide.left_out)
    assert any("never fetched" in item for item in slide.left_out)


def test_broken_markup_and_bad_images_still_give_a_slide() -> None:
    (slide,) = parse_deck(
        {
            "slides": [
                {
                    "slide_id": "x",
                    "html": "<div><p>unclosed <b>bold <i>both</div></td></table><img src='data:image/png;base64,AAAA'>"
                    "<script>never()</script>tail &euro;",
                }
            ]
        }
    )
    assert not slide.plain_text
    assert [block.text for block in slide.blocks if isinstance(block, Para)] == ["unclosed bold both", "tail €"]
    assert "an image that could not be decoded" in slide.left_out and "scripts" in slide.left_out
