"""Hostile input gets a problem+json 4xx, never a 500, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from sessions_api import http
from tests.conftest import all_items
from tests.support import Api, http_event

BASE = "/api/v1/sessions"


def snapshot(table: Any) -> list[dict[str, Any]]:
    return sorted(all_items(table), key=lambda item: (item["PK"], item["SK"]))


HOSTILE_BODIES = [
    ("10,000 levels of arrays", "[" * 10_000 + "]" * 10_000, 400, "bad_request"),
    ("10,000 levels of objects", '{"a":' * 10_000 + "1" + "}" * 10_000, 400, "bad_request"),
    ("a float beyond double range", '{"title": "x", "preferences": {"n": 1e400}}', 400, "bad_request"),
    ("a negative float beyond range", '{"preferences": {"n": -1e400}}', 400, "bad_request"),
    ("NaN", '{"preferences": {"n": NaN}}', 400, "bad_request"),
    ("Infinity", '{"preferences": {"n": Infinity}}', 400, "bad_request"),
    ("an integer of 5,000 digits", '{"idle_timeout_minutes": ' + "9" * 5_000 + "}", 400, "bad_request"),
    ("an integer of 100,000 digits", '{"preferences": {"n": ' + "1" * 100_000 + "}}", 400, "bad_request"),
    ("a lone high surrogate in a metadata key", '{"metadata": {"\\ud800": "v"}}', 422, "validation_error"),
    ("a lone low surrogate in a preference", '{"preferences": {"k": "\\udc00"}}', 422, "validation_error"),
    ("a lone surrogate in the agent name", '{"agent_name": "\\udbff"}', 422, "validation_error"),
    ("a raw control character in a string", '{"title": "a\x01b"}', 400, "bad_request"),
    ("an escaped control character in the title", '{"title": "a\\u0007b"}', 422, "validation_error"),
    ("a newline in the title", '{"title": "a\\nContent-Disposition: evil"}', 422, "validation_error"),
    ("NUL in metadata", '{"metadata": {"k": "\\u0000"}}', 422, "validation_error"),
    ("trailing garbage", '{"title": "x"} {}', 400, "bad_request"),
    (
        "an over-long digit string as a preference",
        '{"preferences": {"n": "' + "0" * 600 + '"}}',
        422,
        "validation_error",
    ),
    ("false as a number", '{"budget": {"max_cost_usd": false}}', 422, "validation_error"),
    ("a numeric string as a number", '{"idle_timeout_minutes": "5"}', 422, "validation_error"),
    ("an array body", "[null, null]", 422, "validation_error"),
    ("a bare string", '"just a string"', 422, "validation_error"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), HOSTILE_BODIES, ids=[case[0] for case in HOSTILE_BODIES])
def test_hostile_json_is_refused_and_nothing_is_stored(
    api: Api, table: Any, name: str, body: str, status: int, code: str
) -> None:
    # Given a caller with one session
    api.create_session()
    before = snapshot(table)
    # When they send a hostile body to create one
    result = api("POST", BASE, body=body)
    # Then a problem, not a crash, and the table is unchanged
    assert result.status == status, result.body
    assert result.problem["code"] == code
    assert snapshot(table) == before


def test_a_valid_surrogate_pair_is_fine(api: Api) -> None:
    result = api("POST", BASE, body='{"title": "emoji \\ud83d\\ude00"}')
    assert result.status == 201 and result.body["title"] == "emoji \U0001f600"


@pytest.mark.parametrize(
    "raw",
    [b'{"title": "\xff\xfe"}', b'{"title": "\xed\xa0\x80"}', b'{"title": "\xc0\xaf"}'],
    ids=["invalid bytes", "an encoded surrogate", "an overlong encoding"],
)
def test_invalid_utf8_is_a_bad_request(api: Api, table: Any, raw: bytes) -> None:
    before = snapshot(table)
    result = api("POST", BASE, body=raw)  # sent base64-encoded, as API Gateway does for bytes it cannot pass
    assert result.status == 400 and result.problem["code"] == "bad_request"
    assert snapshot(table) == before


@pytest.mark.parametrize(
    "session_id",
    ["../../etc/passwd", "..%2F..%2Fetc", "session_0123456789abcdef/../x", "a/b", "%00", "session_" + "f" * 5000],
)
def test_path_traversal_and_encoded_slashes_in_ids_are_just_unknown_ids(api: Api, session_id: str) -> None:
    # Given another user's session exists
    api.create_session(user="bob")
    # When an id with traversal or an encoded slash reaches the route (API Gateway decodes %2F into the parameter)
    logical_id, event = http_event("GET", f"{BASE}/session_0123456789abcdef")
    event["pathParameters"] = {"session_id": session_id}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"{BASE}/{session_id}"
    result = api.invoke(logical_id, event)
    # Then it is simply no session of the caller's
    assert result.status in (404, 422), result.body
    # (a decoded slash leaves the route's shape: the resolver answers the generic not_found)
    assert result.problem["code"] in ("session_not_found", "not_found", "validation_error")


def test_markup_in_titles_is_stored_as_data_and_returned_as_json(api: Api) -> None:
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = api.create_session(title=title)
    result = api("GET", f"{BASE}/{created['session_id']}")
    assert result.status == 200 and result.body["title"] == title
    assert result.headers["Content-Type"] == "application/json"  # never text/html


def test_oversized_bodies_are_refused_before_parsing(api: Api, table: Any) -> None:
    before = snapshot(table)
    result = api("POST", BASE, body='{"title": "' + "x" * http.MAX_BODY_BYTES + '"}')
    assert result.status == 413 and result.problem["code"] == "payload_too_large"
    assert snapshot(table) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_media_types_are_refused(api: Api, content_type: str) -> None:
    result = api("POST", BASE, body='{"title": "x"}', headers={"Content-Type": content_type})
    assert result.status == 415 and result.problem["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "title",
    [
        'evil"\r\nSet-Cookie: a=b',
        "../../etc/passwd",
        "C:\\Windows\\system32",
        "Café – ünïcode\u202egnp.exe",
        "\x00\x1f\x7f",
        "x" * 500,
    ],
)
def test_a_title_becoming_a_download_name_cannot_inject_headers_or_paths(title: str) -> None:
    # The export's Content-Disposition (also sent as the presigned URL's response-content-disposition)
    from sessions_api.logic.exports import content_disposition

    header = content_disposition(title, "pptx")
    assert header.startswith('attachment; filename="') and header.isprintable()
    plain_name = header.split('filename="', 1)[1].split('"', 1)[0]
    assert plain_name.endswith(".pptx") and plain_name.isascii()
    assert not set(plain_name) & set('"\\/:\r\n;') and ".." not in plain_name.strip(".")
    assert len(plain_name) <= 130


def test_a_date_and_a_date_time_compare_without_a_crash(api: Api) -> None:
    # Found by schemathesis: a date (naive) against an RFC 3339 time (aware) was a 500
    result = api("GET", BASE, query={"date_from": "2078-09-12", "date_to": "0120-12-02T00:09:00Z"})
    assert result.status in (200, 422), result.body


def test_json_numbers_are_numbers_whatever_their_spelling(api: Api) -> None:
    # JSON Schema's integer includes 5.0; booleans and numeric strings are refused (see HOSTILE_BODIES)
    result = api("POST", BASE, body='{"idle_timeout_minutes": 5.0, "budget": {"max_cost_usd": 2}}')
    assert result.status == 201, result.body
