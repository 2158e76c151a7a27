"""local.routing: what API Gateway (HTTP API, payload 2.0) does around a Lambda call."""

from __future__ import annotations

import base64
import json

import pytest

from local.routing import (
    Request,
    Response,
    Router,
    build_event,
    dev_claims,
    http_response,
    stage_path,
    with_cors,
)
from local.template import Cors, HttpApiSpec, RouteSpec

API = HttpApiSpec(
    logical_id="HttpApi",
    api_id="abc123defg",
    stage="$default",
    cors=None,
    default_authorizer="Jwt",
    authorizers=("Jwt",),
)
NOW = 1_584_039_838.5  # 12/Mar/2020:19:03:58 +0000


def route(key: str, authorizer: str | None = "Jwt") -> RouteSpec:
    method, _, path = key.partition(" ")
    return RouteSpec(method, path, "HttpApi", authorizer) if path else RouteSpec("ANY", key, "HttpApi", None)


def router(*keys: str) -> Router[str]:
    return Router((route(key), key) for key in keys)


def matched(router_: Router[str], method: str, path: str) -> str | None:
    match = router_.match(method, path)
    return None if match is None else match.target


def request(target: str = "/items", method: str = "GET", headers: list[tuple[str, str]] | None = None, **kwargs):
    return Request(method=method, target=target, headers=headers or [("Host", "127.0.0.1:3000")], **kwargs)


def event_for(req: Request, key: str = "ANY /items", claims: dict[str, str] | None = None) -> dict:
    match = Router([(route(key), "fn")]).match(req.method, req.target.partition("?")[0])
    assert match is not None
    return build_event(req, match, API, claims, "req-1", NOW)


# --- route selection --------------------------------------------------------------------------------


def test_routes_are_selected_like_the_api_gateway_documentation_example() -> None:
    # Given the routes of the example in the API Gateway developer guide
    routes = router("GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default")

    # Then the most specific one takes each request
    assert matched(routes, "GET", "/pets/dog/1") == "GET /pets/dog/1"
    assert matched(routes, "GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert matched(routes, "GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert matched(routes, "POST", "/test/5") == "ANY /{proxy+}"
    assert matched(routes, "GET", "/") == "$default"


def test_static_segments_beat_parameters_and_an_exact_method_beats_any() -> None:
    routes = router(
        "ANY /api/v1/sessions/{session_id}",
        "ANY /api/v1/sessions/continue",
        "OPTIONS /api/v1/sessions/{session_id}",
        "ANY /api/v1/{proxy+}",
    )
    assert matched(routes, "GET", "/api/v1/sessions/continue") == "ANY /api/v1/sessions/continue"
    assert matched(routes, "GET", "/api/v1/sessions/session_1") == "ANY /api/v1/sessions/{session_id}"
    assert matched(routes, "OPTIONS", "/api/v1/sessions/session_1") == "OPTIONS /api/v1/sessions/{session_id}"
    assert matched(routes, "GET", "/api/v1/sessions/session_1/messages") == "ANY /api/v1/{proxy+}"


def test_a_route_matches_its_method_and_its_whole_path_only() -> None:
    routes = router("GET /items/{id}", "GET /files/{proxy+}")
    assert matched(routes, "POST", "/items/1") is None
    assert matched(routes, "GET", "/items") is None
    assert matched(routes, "GET", "/items/") is None  # a parameter needs a value
    assert matched(routes, "GET", "/items/1/more") is None
    assert matched(routes, "GET", "/files") is None  # a greedy parameter too


def test_no_route_and_no_default_is_no_match() -> None:
    assert router("GET /items").match("GET", "/other") is None


def test_path_parameters_are_decoded_and_an_encoded_slash_stays_in_its_parameter() -> None:
    match = Router([(route("GET /items/{id}"), "fn")]).match("GET", "/items/a%2Fb%20c")
    assert match is not None
    assert match.path_parameters == {"id": "a/b c"}

    greedy = Router([(route("GET /files/{proxy+}"), "fn")]).match("GET", "/files/a/b%2Fc")
    assert greedy is not None
    assert greedy.path_parameters == {"proxy": "a/b/c"}


def test_a_named_stage_prefixes_every_path() -> None:
    staged = HttpApiSpec("HttpApi", "abc", "prod", None, None, ())
    assert stage_path(staged, "/prod/items") == "/items"
    assert stage_path(staged, "/prod") == "/"
    assert stage_path(staged, "/production/items") is None
    assert stage_path(API, "/items") == "/items"


# --- the event --------------------------------------------------------------------------------------


def test_event_has_the_payload_2_0_shape() -> None:
    # Given a request with an authorizer's claims
    req = request("/items/42?b=2", headers=[("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8")])
    claims = {"sub": "alice"}

    # When the event is built
    event = event_for(req, "ANY /items/{id}", claims)

    # Then it is the one API Gateway sends
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /items/{id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "b=2"
    assert event["pathParameters"] == {"id": "42"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert "stageVariables" not in event
    assert "cookies" not in event
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "abc123defg"
    assert context["domainName"] == "127.0.0.1:3000"
    assert context["domainPrefix"] == "127"
    assert context["http"] == {
        "method": "GET",
        "path": "/items/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert context["requestId"] == "req-1"
    assert context["routeKey"] == "ANY /items/{id}"
    assert context["stage"] == "$default"
    assert context["time"] == "12/Mar/2020:19:03:58 +0000"
    assert context["timeEpoch"] == 1_584_039_838_500
    assert context["authorizer"] == {"jwt": {"claims": {"sub": "alice"}, "scopes": None}}


def test_event_without_authorizer_query_or_parameters_leaves_them_out() -> None:
    event = event_for(request("/items"), "GET /items", claims=None)
    assert "authorizer" not in event["requestContext"]
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert event["rawQueryString"] == ""


def test_default_route_event() -> None:
    event = event_for(request("/anything/at/all"), "$default")
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "$default"
    assert "pathParameters" not in event


def test_repeated_query_keys_are_joined_with_commas_and_decoded() -> None:
    event = event_for(request("/items?tag=a&tag=b&q=hello%20world&empty="))
    assert event["rawQueryString"] == "tag=a&tag=b&q=hello%20world&empty="
    assert event["queryStringParameters"] == {"tag": "a,b", "q": "hello world", "empty": ""}


def test_headers_are_lower_cased_and_repeats_joined_and_cookies_move_to_their_own_list() -> None:
    headers = [
        ("Host", "127.0.0.1:3000"),
        ("X-Custom", "one"),
        ("x-custom", "two"),
        ("Cookie", "a=1; b=2"),
        ("Cookie", "c=3"),
    ]
    event = event_for(request(headers=headers))
    assert event["headers"] == {"host": "127.0.0.1:3000", "x-custom": "one,two"}
    assert event["cookies"] == ["a=1", "b=2", "c=3"]


def test_the_path_is_handed_over_decoded() -> None:
    event = event_for(request("/items/caf%C3%A9"), "GET /items/{id}")
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/items/café"
    assert event["pathParameters"] == {"id": "café"}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "text/plain", "text/csv", "application/xml"],
)
def test_text_bodies_stay_text(content_type: str) -> None:
    body = '{"title": "Café"}'.encode()
    event = event_for(request(method="POST", headers=[("Content-Type", content_type)], body=body))
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"title": "Café"}'


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/octet-stream")],
        [("Content-Type", "application/x-www-form-urlencoded")],
        [("Content-Type", "image/png")],
        [],  # no content type at all
    ],
)
def test_other_bodies_are_base64_encoded(headers: list[tuple[str, str]]) -> None:
    body = b"\x00\x01binary\xff"
    event = event_for(request(method="POST", headers=[("Host", "h"), *headers], body=body))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_text_content_type_with_invalid_utf8_is_base64_encoded() -> None:
    event = event_for(request(method="POST", headers=[("Content-Type", "text/plain")], body=b"\xff\xfe"))
    assert event["isBase64Encoded"] is True


# --- the authorizer ---------------------------------------------------------------------------------


def test_claims_come_from_the_dev_headers_or_the_default_user() -> None:
    from_header = dev_claims(request(headers=[("X-Dev-User", "bob"), ("X-Dev-Email", "bob@example.com")]), "dev", NOW)
    assert from_header is not None
    assert (from_header["sub"], from_header["email"], from_header["iss"]) == (
        "bob",
        "bob@example.com",
        "local",
    )
    assert all(isinstance(value, str) for value in from_header.values())

    default = dev_claims(request(), "dev-user", NOW)
    assert default is not None
    assert default["sub"] == "dev-user"
    assert "email" not in default


def test_no_dev_user_and_no_header_means_no_caller() -> None:
    assert dev_claims(request(), "", NOW) is None


# --- the result -------------------------------------------------------------------------------------


def test_a_result_without_status_code_is_a_json_200() -> None:
    response = http_response({"message": "hi"})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == {"message": "hi"}

    assert http_response("plain text").body == b"plain text"
    assert http_response([1, 2]).body == b"[1, 2]"


def test_a_full_result_becomes_status_headers_cookies_and_body() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "Location": "/items/1", "Content-Length": "999"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": '{"id": 1}',
        }
    )
    assert response.status == 201
    assert response.headers == [
        ("Content-Type", "application/json"),
        ("Location", "/items/1"),
        ("X-Many", "a"),
        ("X-Many", "b"),
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2; HttpOnly"),
    ]
    assert response.body == b'{"id": 1}'


def test_a_base64_result_is_decoded() -> None:
    data = bytes(range(256))
    response = http_response(
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(data).decode(), "headers": {}}
    )
    assert response.body == data


def test_a_result_without_body_is_empty() -> None:
    response = http_response({"statusCode": 204})
    assert (response.status, response.body, response.headers) == (204, b"", [])


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "not a number"},
        {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
    ],
)
def test_a_malformed_result_is_an_error(result: dict) -> None:
    with pytest.raises(ValueError):
        http_response(result)


# --- CORS -------------------------------------------------------------------------------------------

CORS = Cors(
    allow_origins=("https://app.example.com",),
    allow_methods=("GET", "POST"),
    allow_headers=("authorization", "content-type"),
    expose_headers=("etag",),
    max_age=600,
)


def test_cors_headers_replace_the_functions_own() -> None:
    req = request(headers=[("Origin", "https://app.example.com")])
    response = Response(200, [("access-control-allow-origin", "*"), ("etag", '"1"')])

    headers = dict(with_cors(CORS, req, response).headers)

    assert headers == {
        "etag": '"1"',
        "access-control-allow-origin": "https://app.example.com",
        "access-control-expose-headers": "etag",
    }


def test_a_preflight_gets_the_allowed_methods_and_headers() -> None:
    req = request(
        method="OPTIONS",
        headers=[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")],
    )
    headers = dict(with_cors(CORS, req, Response(204)).headers)
    assert headers == {
        "access-control-allow-origin": "https://app.example.com",
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "authorization,content-type",
        "access-control-max-age": "600",
    }


def test_an_origin_not_allowed_gets_no_cors_headers() -> None:
    req = request(headers=[("Origin", "https://evil.example.com")])
    assert with_cors(CORS, req, Response(200)).headers == []
    wildcard = Cors(allow_origins=("*",))
    assert dict(with_cors(wildcard, req, Response(200)).headers) == {"access-control-allow-origin": "*"}
