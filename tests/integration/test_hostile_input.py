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
    ("10,000 levels of arrays", "[" * 10_000 + "]" * 10_000, 422, "validation_error"),
    ("10,000 levels of objects", '{"a":' * 10_000 + "1" + "}" * 10_000, 422, "validation_error"),
    ("one level past the depth limit", '{"preferences": ' + "[" * 64 + "]" * 64 + "}", 422, "validation_error"),
    ("a duplicate key", '{"title": "first", "title": "second"}', 422, "validation_error"),
    ("a duplicate key in a nested object", '{"metadata": {"k": "a", "k": "b"}}', 422, "validation_error"),
    ("a null body", "null", 422, "validation_error"),
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
    ("a budget too close to zero to store", '{"budget": {"max_cost_usd": 5e-246}}', 422, "validation_error"),
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


def _body_of_bytes(size: int) -> str:
    """A JSON body of exactly `size` UTF-8 bytes, mostly two-byte characters (half as many characters)."""
    frame = '{"messages": [{"role": "user", "content": ""}]}'
    filler = size - len(frame)
    text = "é" * (filler // 2) + "x" * (filler % 2)
    body = frame.replace('"content": ""', f'"content": "{text}"')
    assert len(body.encode("utf-8")) == size
    return body


@pytest.mark.parametrize(
    ("size", "status"),
    [(http.MAX_BODY_BYTES - 1, 422), (http.MAX_BODY_BYTES, 422), (http.MAX_BODY_BYTES + 1, 413)],
    ids=["just under", "at", "just past"],
)
def test_the_body_limit_counts_bytes_not_characters(api: Api, table: Any, size: int, status: int) -> None:
    # Given a body of multibyte text near 1 MiB (about 524,000 characters: far under the limit in characters)
    session_id = api.create_session()["session_id"]
    before = snapshot(table)
    # When it is appended
    result = api("POST", f"{BASE}/{session_id}/messages", body=_body_of_bytes(size))
    # Then up to the limit it reaches validation (content is capped at 100,000 characters); past it, 413
    assert result.status == status, result.body
    assert result.problem["code"] == ("payload_too_large" if status == 413 else "validation_error")
    assert snapshot(table) == before


def test_a_body_at_the_depth_limit_is_stored(api: Api) -> None:
    nested: Any = "deep"
    for _ in range(http.MAX_BODY_DEPTH - 2):  # the body and `results` are two of the levels
        nested = [nested]
    session_id = api.create_session()["session_id"]
    stored = api("PUT", f"{BASE}/{session_id}/results", body={"results": nested})
    assert stored.status == 200, stored.body
    assert api("GET", f"{BASE}/{session_id}/results").body["results"] == nested


@pytest.mark.parametrize("levels", [256, 300, 999])
def test_deep_results_are_refused_not_a_crash(api: Api, table: Any, levels: int) -> None:
    session_id = api.create_session()["session_id"]
    before = snapshot(table)
    result = api("PUT", f"{BASE}/{session_id}/results", body='{"results": ' + "[" * levels + "]" * levels + "}")
    assert result.status == 422 and result.problem["code"] == "validation_error"
    assert snapshot(table) == before


def test_an_empty_body_still_means_the_defaults(api: Api) -> None:
    # `null` is refused (HOSTILE_BODIES), but no body at all is the documented way to take every default
    result = api("POST", BASE)
    assert result.status == 201 and result.body["title"] == "New Chat"


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


@pytest.mark.parametrize("moment", ["2026-01-15T10:30:00", "2026-01-15 10:30", "2026-01-15T10:30:00.123"])
def test_a_date_time_without_an_offset_is_refused(api: Api, moment: str) -> None:
    # RFC 3339 requires `Z` or an offset; guessing UTC would silently shift a client's local time
    result = api("GET", BASE, query={"date_from": moment})
    assert result.status == 422 and result.problem["code"] == "validation_error", result.body
    session_id = api.create_session()["session_id"]
    shared = api(
        "POST",
        f"{BASE}/{session_id}/share",
        body={"recipients": ["bob"], "permissions": "view", "expiration": "2999-01-01T00:00:00"},
    )
    assert shared.status == 422, shared.body


@pytest.mark.parametrize("moment", ["2026-01-15", "2026-01-15T10:30:00Z", "2026-01-15T12:30:00+02:00"])
def test_a_date_or_a_date_time_with_an_offset_is_accepted(api: Api, moment: str) -> None:
    assert api("GET", BASE, query={"date_from": moment}).status == 200


def test_a_date_and_a_date_time_compare_without_a_crash(api: Api) -> None:
    # Found by schemathesis: a date (naive) against an RFC 3339 time (aware) was a 500
    result = api("GET", BASE, query={"date_from": "2078-09-12", "date_to": "0120-12-02T00:09:00Z"})
    assert result.status in (200, 422), result.body


def test_json_numbers_are_numbers_whatever_their_spelling(api: Api) -> None:
    # JSON Schema's integer includes 5.0; booleans and numeric strings are refused (see HOSTILE_BODIES)
    result = api("POST", BASE, body='{"idle_timeout_minutes": 5.0, "budget": {"max_cost_usd": 2}}')
    assert result.status == 201, result.body


@pytest.mark.parametrize(
    ("expiration", "status"),
    [
        ("9998-12-31T23:59:59.999Z", 201),  # just under the last moment the API takes
        ("9999-01-01T00:00:00Z", 422),  # at it
        ("9999-12-31T23:59:59Z", 422),  # the end of the calendar: its kept-until date would overflow
        ("9998-12-31T23:59:59-23:59", 422),  # past it once converted to UTC
        ("0001-01-01T00:00:00+23:59", 422),  # before the calendar once converted to UTC
    ],
)
def test_a_share_expiration_near_the_end_of_time_is_stored_or_refused(
    api: Api, table: Any, expiration: str, status: int
) -> None:
    session_id = api.create_session()["session_id"]
    before = snapshot(table)
    body = {"recipients": ["bob"], "permissions": "view", "expiration": expiration}
    result = api("POST", f"{BASE}/{session_id}/share", body=body)
    assert result.status == status, result.body
    if status == 201:
        assert result.body["expires_at"] == expiration
        assert api("GET", f"{BASE}/{session_id}", user="bob").status == 200  # the far-future share works
    else:
        assert result.problem["errors"][0]["field"] == "body.expiration"
        assert snapshot(table) == before


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_a_filter_moment_outside_the_calendar_is_refused(api: Api, moment: str) -> None:
    result = api("GET", BASE, query={"date_to": moment})
    assert result.status == 422 and result.problem["code"] == "validation_error", result.body
