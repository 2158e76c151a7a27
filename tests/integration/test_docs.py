"""Service endpoints: the OpenAPI document (fresh, complete), Swagger UI and its files, health, `$default`."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.support import Api, function_specs
from tools import openapi

BASE = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(openapi.OUTPUTS[0].read_text())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_committed_spec_is_what_the_code_generates() -> None:
    # Given the code of every function, when the spec is generated, then both committed copies equal it.
    text = openapi.render(openapi.generate())
    for path in openapi.OUTPUTS:
        assert path.read_text() == text, f"{path} is stale: run `make openapi`"


def test_every_route_of_the_template_is_in_the_spec(spec: dict[str, Any]) -> None:
    documented = {path for _, path, _ in operations(spec)}
    served = {
        route.path
        for logical_id, function in function_specs().items()
        if (function.code_dir / "app.py").exists()
        for route in function.routes
        if route.path != "$default" and route.method != "OPTIONS"
    }
    assert served - documented == set()


def test_every_operation_documents_its_problems(spec: dict[str, Any]) -> None:
    assert spec["servers"] == [{"url": "/", "description": spec["servers"][0]["description"]}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        public = operation.get("security") == []
        public_paths = (f"{BASE}/docs", f"{BASE}/health", f"{BASE}/openapi.json", f"{BASE}/playground")
        assert public == path.startswith(public_paths), path
        assert {"429", "500", "503"} <= set(responses), (method, path)
        assert ("401" in responses) != public, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                content = response["content"]
                assert content.pop("application/problem+json") == {"schema": {"$ref": "#/components/schemas/Problem"}}
                # ...or, where API Gateway answers itself (no token, throttled, too big, integration failed), its own
                assert content in ({}, {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}})


def test_docs_page_is_static_with_a_strict_csp(api: Api) -> None:
    # Given a request carrying markup in its query and headers
    hostile = "<script>alert(1)</script>"
    result = api("GET", f"{BASE}/docs", query={"q": hostile}, headers={"X-Title": hostile}, user=None)
    # Then the page is the same static document, scripts only from the API itself
    assert result.status == 200
    assert result.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = result.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "http" not in csp
    assert hostile not in result.body and "<script>" not in result.body
    assert 'src="docs/swagger-ui-bundle.js"' in result.body and "//" not in result.body.split("<body>")[1]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-initializer.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
        ("LICENSE", "text/plain; charset=utf-8"),
    ],
)
def test_swagger_files_are_served_with_type_and_caching(api: Api, name: str, content_type: str) -> None:
    result = api("GET", f"{BASE}/docs/{name}", headers={"Accept-Encoding": "gzip"}, user=None)
    assert result.status == 200
    assert result.headers["Content-Type"] == content_type
    assert result.headers["Cache-Control"] == "public, max-age=86400"
    assert result.headers["X-Content-Type-Options"] == "nosniff"
    body = base64_body(result.raw)
    if result.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    assert body == (openapi.ROOT / "functions/docs/swagger_ui" / name).read_bytes()
    again = api("GET", f"{BASE}/docs/{name}", headers={"If-None-Match": result.headers["ETag"]}, user=None)
    assert again.status == 304


def base64_body(raw: dict[str, Any]) -> bytes:
    import base64

    return base64.b64decode(raw["body"]) if raw.get("isBase64Encoded") else raw["body"].encode()


@pytest.mark.parametrize("name", ["app.py", "..%2Fapp.py", "../app.py", "openapi.json", "README.md", "x" * 65])
def test_only_the_swagger_files_are_served(api: Api, name: str) -> None:
    from tests.support import http_event

    logical_id, event = http_event("GET", f"{BASE}/docs/x", user=None)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"{BASE}/docs/{name}"
    event["pathParameters"] = {"name": name}
    result = api.invoke(logical_id, event)
    assert result.status in (404, 422)
    assert result.problem["code"] in ("not_found", "validation_error")


def test_spec_is_served(api: Api) -> None:
    result = api("GET", f"{BASE}/openapi.json", user=None)
    assert result.status == 200
    assert result.body["openapi"].startswith("3.1")
    assert result.body == json.loads(openapi.OUTPUTS[1].read_text())


def test_health_is_cheap(api: Api, ddb_calls: list[str]) -> None:
    result = api("GET", f"{BASE}/health", user=None)
    assert result.status == 200
    assert result.body["status"] == "ok" and result.body["version"] == openapi.api_version()
    assert result.body["time"].endswith("Z")
    assert ddb_calls == []


def test_unknown_paths_get_our_404_and_known_paths_our_405(api: Api) -> None:
    missing = api("GET", f"{BASE}/no/such/thing", user=None)
    assert missing.status == 404 and missing.problem["code"] == "not_found"
    assert missing.problem["instance"] == f"{BASE}/no/such/thing"
    wrong_method = api("DELETE", f"{BASE}/health", user=None)
    assert wrong_method.status == 405 and wrong_method.headers["Allow"] == "GET"
