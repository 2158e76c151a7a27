"""The exports endpoint group, in-process with moto: every file is opened with its own library and
checked against the deck. Given / When / Then."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import docx
import pypdf
import pytest
from botocore.exceptions import EndpointConnectionError
from PIL import Image
from pptx import Presentation
from pptx.util import Emu

from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"
PPTX_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def png_data_uri(width: int = 120, height: int = 60, colour: tuple[int, int, int] = (30, 90, 200)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


DECK = {
    "slides": [
        {
            "slide_id": "intro",
            "html": (
                "<h1>Quarterly review — résumé €</h1>"
                "<p>Intro with <b>bold</b>, <i>italic</i> and <a href='https://example.com/q'>a link</a>.</p>"
                "<ul><li>Revenue up 12 %<ul><li>Europe ≥ 5 % → “strong”</li></ul></li><li>Costs flat</li></ul>"
                "<script>alert('never')</script><button onclick='go()'>Go</button>"
            ),
        },
        {
            "slide_id": "numbers",
            "html": (
                "<h1 class='hot'>Numbers</h1><p>By region:</p>"
                "<table><tr><th>Region</th><th>Revenue €</th></tr>"
                "<tr><td>EU</td><td style='text-align:right'>1.2 M</td></tr><tr><td>US</td><td>2.4 M</td></tr></table>"
            ),
        },
        {"slide_id": "picture", "html": f"<h1>A picture</h1><img src='{png_data_uri()}' alt='blue box'>"},
        {"slide_id": "plain", "html": "<p>No heading here, just a paragraph with naïve café text.</p>"},
    ],
    "css": ".hot { color: #c00000; } p { text-align: left }",
    "scripts": ["console.log('deck script')"],
}


def export_path(session_id: str) -> str:
    return f"{BASE}/{session_id}/export"


def bucket() -> str:
    return os.environ["BUCKET_NAME"]


def s3_object(key: str) -> dict[str, Any]:
    return boto3.client("s3").get_object(Bucket=bucket(), Key=key)


def s3_keys() -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket(), Prefix="sessions/")
    return [entry["Key"] for entry in listing.get("Contents", [])]


def file_of(export: dict[str, Any]) -> bytes:
    """The exported file, found from its presigned URL's key (in-process moto serves no HTTP)."""
    path = unquote(urlsplit(export["download_url"]).path)
    return s3_object(path[path.index("sessions/") :])["Body"].read()


@pytest.fixture
def session(api: Api, table: Any) -> Iterator[dict[str, Any]]:
    """Alice's session with a deck, two messages and a comment."""
    created = api.create_session(title='Q3 "plan" — €uro/ünïcode', prompt="Make me slides about Q3 ✓")
    sid = created["session_id"]
    assert api("PUT", f"{BASE}/{sid}/slides", body=DECK).status == 200
    table.put_item(
        Item={
            "PK": f"SESSION#{sid}",
            "SK": "MSG#msg_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "type": "message",
            "message_id": "msg_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "session_id": sid,
            "role": "assistant",
            "content": "Here are **four** slides — enjoy.",
            "created_at": "2026-01-15T10:30:01.000Z",
        }
    )
    table.update_item(
        Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"},
        UpdateExpression="ADD message_count :one",
        ExpressionAttributeValues={":one": 1},
    )
    table.put_item(
        Item={
            "PK": f"SESSION#{sid}",
            "SK": "COMMENT#cmt_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "type": "comment",
            "comment_id": "cmt_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "session_id": sid,
            "content": "Slide 2 needs sources",
            "comment_type": "note",
            "author": "alice",
            "created_at": "2026-01-15T10:31:00.000Z",
        }
    )
    yield api("GET", f"{BASE}/{sid}").body


def export(api: Api, session_id: str, export_format: str | None = None, **kwargs: Any) -> dict[str, Any]:
    body = {"format": export_format} if export_format else None
    result = api("POST", export_path(session_id), body=body, **kwargs)
    assert result.status == 201, result.body
    return result.body


# -- the files ------------------------------------------------------------------------------------
def test_pptx_has_one_16_9_slide_per_slide_with_titles_text_tables_pictures_and_notes(
    api: Api, session: dict[str, Any]
) -> None:
    # When the owner exports without naming a format
    result = export(api, session["session_id"])
    # Then it is a PPTX whose bytes match what the response says
    assert result["format"] == "pptx" and result["content_type"] == PPTX_TYPE
    data = file_of(result)
    assert len(data) == result["size_bytes"] and hashlib.sha256(data).hexdigest() == result["sha256"]
    deck = Presentation(io.BytesIO(data))
    assert (deck.slide_width, deck.slide_height) == (Emu(12192000), Emu(6858000))  # 13.333 × 7.5 in
    slides = list(deck.slides)
    assert len(slides) == len(DECK["slides"])
    titles = [slide.shapes.title.text if slide.shapes.title is not None else None for slide in slides]
    assert titles == ["Quarterly review — résumé €", "Numbers", "A picture", None]

    def texts(slide: Any) -> str:
        return "\n".join(shape.text_frame.text for shape in slide.shapes if shape.has_text_frame)

    first = texts(slides[0])
    assert "Intro with bold, italic and a link." in first and "Europe ≥ 5 % → “strong”" in first
    assert "alert" not in first and "Go" not in first.split()
    runs = [
        run for shape in slides[0].shapes if shape.has_text_frame for p in shape.text_frame.paragraphs for run in p.runs
    ]
    assert any(run.text == "bold" and run.font.bold for run in runs)
    assert any(run.text == "a link" and run.hyperlink.address == "https://example.com/q" for run in runs)
    nested = [
        p
        for shape in slides[0].shapes
        if shape.has_text_frame
        for p in shape.text_frame.paragraphs
        if "Europe" in p.text
    ]
    assert nested and nested[0]._p.pPr.get("marL") is not None
    tables = [shape.table for shape in slides[1].shapes if shape.has_table]
    assert len(tables) == 1
    assert [[cell.text for cell in row.cells] for row in tables[0].rows] == [
        ["Region", "Revenue €"],
        ["EU", "1.2 M"],
        ["US", "2.4 M"],
    ]
    assert slides[1].shapes.title.text_frame.paragraphs[0].runs[0].text == "Numbers"
    pictures = [shape for shape in slides[2].shapes if shape.shape_type == 13]
    assert len(pictures) == 1 and pictures[0].image.size == (120, 60)
    assert "naïve café" in texts(slides[3])
    notes = [slide.notes_slide.notes_text_frame.text for slide in slides]
    assert [note.splitlines()[0] for note in notes] == [f"Slide id: {s['slide_id']}" for s in DECK["slides"]]
    assert "scripts" in notes[0] and "event handlers" in notes[0] and "buttons" in notes[0]


def test_pdf_has_one_landscape_16_9_page_per_slide_with_unicode_text_and_an_embedded_font(
    api: Api, session: dict[str, Any]
) -> None:
    result = export(api, session["session_id"], "pdf")
    assert result["content_type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(file_of(result)))
    assert len(reader.pages) == len(DECK["slides"])
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == (960.0, 540.0)
    texts = [page.extract_text() for page in reader.pages]
    assert "Quarterly review — résumé €" in texts[0]
    assert "Europe ≥ 5 % → “strong”" in texts[0]
    assert "alert" not in texts[0] and "Left out" in texts[0]
    assert "Numbers" in texts[1] and "Region" in texts[1] and "1.2 M" in texts[1]
    assert "naïve café" in texts[3]
    fonts = reader.pages[0]["/Resources"]["/Font"]
    descriptors = [font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"] for font in fonts.values()]
    assert descriptors and all("/FontFile2" in descriptor for descriptor in descriptors), "the TTF is embedded"
    assert len(reader.pages[2].images) == 1
    assert reader.metadata.title == session["title"]


def test_docx_holds_the_transcript_then_the_slides(api: Api, session: dict[str, Any]) -> None:
    result = export(api, session["session_id"], "docx")
    document = docx.Document(io.BytesIO(file_of(result)))
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert text.index("Conversation") < text.index("Make me slides about Q3 ✓") < text.index("Here are **four**")
    assert text.index("Here are **four**") < text.index("Slide 1: Quarterly review — résumé €")
    assert "Europe ≥ 5 % → “strong”" in text and "alert" not in text and "Scripts" in text
    assert [[cell.text for cell in row.cells] for row in document.tables[0].rows] == [
        ["Region", "Revenue €"],
        ["EU", "1.2 M"],
        ["US", "2.4 M"],
    ]
    assert len(document.inline_shapes) == 1
    links = [link for paragraph in document.paragraphs for link in paragraph.hyperlinks]
    assert [(link.text, link.address) for link in links] == [("a link", "https://example.com/q")]
    assert result["message_count"] == 2


def test_markdown_holds_the_transcript_then_the_slides(api: Api, session: dict[str, Any]) -> None:
    result = export(api, session["session_id"], "markdown")
    assert result["content_type"] == "text/markdown; charset=utf-8" and result["file_name"].endswith(".md")
    text = file_of(result).decode()
    assert text.startswith('# Q3 "plan" — €uro/ünïcode\n')
    assert "**User** ·" in text and "Make me slides about Q3 ✓" in text and "Here are **four** slides" in text
    assert "### Slide 1: Quarterly review — résumé €" in text
    assert "Intro with **bold**, *italic* and [a link](https://example.com/q)." in text
    assert "- Revenue up 12 %\n   - Europe ≥ 5 % → “strong”\n- Costs flat" in text
    assert "| Region | Revenue € |\n|---|---|\n| EU | 1.2 M |\n| US | 2.4 M |" in text
    assert "![blue box](data:image/png;base64," in text
    assert "alert" not in text and "scripts" in text


def test_json_is_the_whole_session(api: Api, session: dict[str, Any]) -> None:
    result = export(api, session["session_id"], "json")
    body = json.loads(file_of(result))
    assert body["session"]["session_id"] == session["session_id"] and body["session"]["title"] == session["title"]
    assert [message["content"] for message in body["messages"]] == [
        "Make me slides about Q3 ✓",
        "Here are **four** slides — enjoy.",
    ]
    assert body["slide_deck"] == DECK and body["deck_version"] == 1
    assert [comment["content"] for comment in body["comments"]] == ["Slide 2 needs sources"]


def test_the_file_is_stored_under_the_session_prefix_tagged_and_named_safely(api: Api, session: dict[str, Any]) -> None:
    result = export(api, session["session_id"], "pdf")
    key = f"sessions/alice/{session['session_id']}/exports/{result['export_id']}.pdf"
    assert s3_keys()[-1] == key or key in s3_keys()
    stored = s3_object(key)
    assert stored["ContentType"] == "application/pdf"
    disposition = stored["ContentDisposition"]
    assert disposition == (
        "attachment; filename=\"Q3 plan - EURuro unicode.pdf\"; filename*=UTF-8''"
        "Q3%20plan%20%E2%80%94%20%E2%82%ACuro%20%C3%BCn%C3%AFcode.pdf"
    )
    assert "\n" not in disposition and "\r" not in disposition
    tags = boto3.client("s3").get_object_tagging(Bucket=bucket(), Key=key)["TagSet"]
    assert tags == [{"Key": "kind", "Value": "export"}]
    query = parse_qs(urlsplit(result["download_url"]).query)
    assert query["response-content-disposition"] == [disposition]
    assert "X-Amz-Signature" in query and query["X-Amz-Expires"] == ["900"], "SigV4, valid for 15 minutes"
    assert result["file_name"] == "Q3 plan — €uro ünïcode.pdf"


# -- the flow -------------------------------------------------------------------------------------
def test_an_unknown_format_is_422_and_stores_nothing(api: Api, session: dict[str, Any], table: Any) -> None:
    before, objects = all_items(table), s3_keys()
    for kwargs in ({"body": {"format": "xlsx"}}, {"query": {"format": "exe"}}, {"body": {"format": "pdf", "x": 1}}):
        result = api("POST", export_path(session["session_id"]), **kwargs)
        assert result.status == 422 and result.problem["code"] == "validation_error", kwargs
    conflicting = api("POST", export_path(session["session_id"]), body={"format": "pdf"}, query={"format": "docx"})
    assert conflicting.status == 422
    assert api("GET", export_path(session["session_id"]), query={"format": "zip"}).status == 422
    assert all_items(table) == before and s3_keys() == objects


def test_download_true_or_an_accept_naming_the_type_answers_303(api: Api, session: dict[str, Any]) -> None:
    sid = session["session_id"]
    redirected = api("POST", export_path(sid), query={"format": "docx", "download": "true"})
    assert redirected.status == 303 and redirected.headers["Location"] == redirected.body["download_url"]
    by_accept = api("POST", export_path(sid), headers={"Accept": "application/pdf"})
    assert by_accept.status == 303 and by_accept.body["format"] == "pdf"
    assert urlsplit(by_accept.headers["Location"]).path.endswith(".pdf")
    plain = api("POST", export_path(sid), query={"format": "json"}, headers={"Accept": "application/json"})
    assert plain.status == 201 and plain.headers["Location"] == f"{BASE}/{sid}/exports/{plain.body['export_id']}"


def test_get_export_reuses_a_file_of_unchanged_content(
    api: Api, session: dict[str, Any], table: Any, ddb_calls: list[str]
) -> None:
    sid = session["session_id"]
    first = api("GET", export_path(sid), query={"format": "pptx"})
    assert first.status == 303 and first.headers["Location"].split("?")[0].endswith(".pptx")
    # When the same download is asked for again with nothing changed
    ddb_calls.clear()
    again = api("GET", export_path(sid), query={"format": "pptx"})
    # Then the same file is handed out, for the price of the access check alone
    assert again.status == 303 and again.body["export_id"] == first.body["export_id"]
    assert ddb_calls == ["BatchGetItem"]
    assert api("GET", export_path(sid), query={"format": "pdf"}).body["export_id"] != first.body["export_id"]
    # And an export does not change the session (no new version, no activity)
    assert api("GET", f"{BASE}/{sid}").body["version"] == session["version"]
    # But a changed deck makes a new file
    api("PUT", f"{BASE}/{sid}/slides/extra", body={"html": "<h1>More</h1>"})
    changed = api("GET", export_path(sid), query={"format": "pptx"})
    assert changed.body["export_id"] != first.body["export_id"]
    assert len(Presentation(io.BytesIO(file_of(changed.body))).slides) == len(DECK["slides"]) + 1
    exported = [item for item in all_items(table) if item.get("event_type") == "exported"]
    assert len(exported) == 3


def test_exports_are_listed_newest_first_with_fresh_links(api: Api, session: dict[str, Any]) -> None:
    sid = session["session_id"]
    made = [export(api, sid, fmt)["export_id"] for fmt in ("pptx", "markdown", "json")]
    first = api("GET", f"{BASE}/{sid}/exports", query={"limit": "2"})
    assert first.status == 200 and first.body["has_more"] is True
    assert [item["export_id"] for item in first.body["exports"]] == made[::-1][:2]
    second = api("GET", f"{BASE}/{sid}/exports", query={"limit": "2", "cursor": first.body["next_cursor"]})
    assert [item["export_id"] for item in second.body["exports"]] == made[:1] and second.body["next_cursor"] is None
    tampered = first.body["next_cursor"][:-2] + ("AA" if not first.body["next_cursor"].endswith("AA") else "BB")
    assert api("GET", f"{BASE}/{sid}/exports", query={"cursor": tampered}).problem["code"] == "bad_request"
    one = api("GET", f"{BASE}/{sid}/exports/{made[0]}")
    assert one.status == 200 and one.body["format"] == "pptx" and one.body["download_url"].startswith("https://")
    assert file_of(one.body)[:2] == b"PK"
    missing = api("GET", f"{BASE}/{sid}/exports/exp_01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status == 404 and missing.problem["code"] == "export_not_found"


def test_someone_elses_session_is_404_on_every_route(api: Api, session: dict[str, Any], table: Any) -> None:
    sid = session["session_id"]
    made = export(api, sid)["export_id"]
    for method, path, query in [
        ("POST", export_path(sid), None),
        ("GET", export_path(sid), {"format": "pdf"}),
        ("GET", f"{BASE}/{sid}/exports", None),
        ("GET", f"{BASE}/{sid}/exports/{made}", None),
    ]:
        result = api(method, path, query=query, user="mallory")
        assert result.status == 404 and result.problem["code"] == "session_not_found", (method, path)
    # A viewer may list but not export; a collaborator may export
    for user, permission in (("victor", "view"), ("edna", "edit"), ("colin", "collaborate")):
        table.put_item(
            Item={"PK": f"SESSION#{sid}", "SK": f"SHARE#USER#{user}", "type": "share", "permission": permission}
        )
    assert api("GET", f"{BASE}/{sid}/exports", user="victor").status == 200
    for user in ("victor", "edna"):
        refused = api("POST", export_path(sid), user=user)
        assert refused.status == 403 and refused.problem["code"] == "session_not_accessible"
    by_collaborator = api("POST", export_path(sid), body={"format": "markdown"}, user="colin")
    assert by_collaborator.status == 201 and by_collaborator.body["created_by"] == "colin"


def test_exports_work_on_completed_and_expired_sessions(api: Api, session: dict[str, Any], table: Any) -> None:
    sid = session["session_id"]
    for status in ("completed", "expired"):
        table.update_item(
            Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status},
        )
        assert export(api, sid, "markdown")["format"] == "markdown"
    assert api("GET", f"{BASE}/{sid}").body["status"] == "expired"


def test_s3_failing_mid_export_is_503_and_leaves_no_record(api: Api, session: dict[str, Any], table: Any) -> None:
    from sessions_api.dal import clients

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    before = all_items(table)
    clients.s3().meta.events.register("before-call.s3.PutObject", unreachable)
    result = api("POST", export_path(session["session_id"]), body={"format": "pdf"})
    assert result.status == 503 and result.problem["code"] == "service_unavailable"
    assert int(result.headers["Retry-After"]) >= 1
    assert all_items(table) == before, "no export record, no history event, no session change"
    assert not [key for key in s3_keys() if "/exports/" in key]


def test_a_failed_transaction_after_the_upload_leaves_no_record(api: Api, session: dict[str, Any], table: Any) -> None:
    from botocore.exceptions import ClientError

    from sessions_api.dal import clients

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")

    before = all_items(table)
    clients.dynamodb().meta.events.register("before-call.dynamodb.TransactWriteItems", throttled)
    result = api("POST", export_path(session["session_id"]))
    assert result.status == 503 and "Retry-After" in result.headers
    assert all_items(table) == before


def test_a_slide_that_cannot_be_parsed_becomes_its_plain_text(
    api: Api, session: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import render.parse

    original = render.parse.parse_slide

    def fragile(slide_id: str, number: int, markup: str, deck_css: str = "") -> Any:
        if slide_id == "numbers":
            raise ValueError("unparseable")
        return original(slide_id, number, markup, deck_css)

    monkeypatch.setattr(render.parse, "parse_slide", fragile)
    for export_format in ("pptx", "pdf"):
        result = export(api, session["session_id"], export_format)
        data = file_of(result)
        if export_format == "pptx":
            slides = list(Presentation(io.BytesIO(data)).slides)
            texts = [shape.text_frame.text for shape in slides[1].shapes if shape.has_text_frame]
            assert len(slides) == 4 and slides[0].shapes.title.text == "Quarterly review — résumé €"
            assert any("Numbers By region: Region Revenue € EU 1.2 M US 2.4 M" in text for text in texts)
            assert "could not be parsed" in slides[1].notes_slide.notes_text_frame.text
        else:
            pages = pypdf.PdfReader(io.BytesIO(data)).pages
            assert len(pages) == 4 and "Region Revenue € EU 1.2 M" in pages[1].extract_text()


def test_a_deck_stored_in_s3_and_a_hundred_slides_export(api: Api) -> None:
    session = api.create_session(title="Big")
    sid = session["session_id"]
    slides = [
        {
            "slide_id": f"s{i}",
            "html": f"<h1>Slide {i}</h1><p>{'word ' * 600}</p><ul><li>point</li></ul>",
        }
        for i in range(100)
    ]
    assert api("PUT", f"{BASE}/{sid}/slides", body={"slides": slides}).status == 200
    assert any("/payloads/deck-1-" in key for key in s3_keys()), "the deck is over the item threshold"
    for export_format, count in (
        ("pptx", lambda data: len(Presentation(io.BytesIO(data)).slides)),
        ("pdf", lambda data: len(pypdf.PdfReader(io.BytesIO(data)).pages)),
    ):
        result = export(api, sid, export_format)
        assert result["slide_count"] == 100 and count(file_of(result)) == 100


def test_an_empty_session_still_exports(api: Api) -> None:
    session = api.create_session(title="Nothing yet")
    result = export(api, session["session_id"], "pptx")
    slides = list(Presentation(io.BytesIO(file_of(result))).slides)
    assert len(slides) == 1 and slides[0].shapes.title.text == "Nothing yet"
    assert result["slide_count"] == 0


def test_request_counts(api: Api, session: dict[str, Any], ddb_calls: list[str]) -> None:
    sid = session["session_id"]
    ddb_calls.clear()
    made = export(api, sid, "pptx")
    assert ddb_calls == ["BatchGetItem", "GetItem", "TransactWriteItems"], "access, deck, the record"
    ddb_calls.clear()
    export(api, sid, "docx")
    assert ddb_calls == ["BatchGetItem", "GetItem", "Query", "TransactWriteItems"], "…and one page of messages"
    ddb_calls.clear()
    export(api, sid, "json")
    assert ddb_calls == ["BatchGetItem", "GetItem", "Query", "Query", "TransactWriteItems"], "…and the comments"
    ddb_calls.clear()
    api("GET", f"{BASE}/{sid}/exports")
    assert ddb_calls == ["BatchGetItem", "Query"]
    ddb_calls.clear()
    api("GET", f"{BASE}/{sid}/exports/{made['export_id']}")
    assert ddb_calls == ["BatchGetItem", "GetItem"]


def test_an_idempotency_key_replay_returns_the_same_export_with_a_fresh_link(
    api: Api, session: dict[str, Any], table: Any
) -> None:
    sid = session["session_id"]
    headers = {"Idempotency-Key": "export-once"}
    first = api("POST", export_path(sid), body={"format": "pdf"}, headers=headers)
    again = api("POST", export_path(sid), body={"format": "pdf"}, headers=headers)
    assert first.status == again.status == 201
    assert again.body["export_id"] == first.body["export_id"] and again.body["sha256"] == first.body["sha256"]
    assert len([item for item in all_items(table) if item["SK"].startswith("EXPORT#")]) == 1
    other = api("POST", export_path(sid), body={"format": "docx"}, headers=headers)
    assert other.status == 409 and other.problem["code"] == "conflict"
