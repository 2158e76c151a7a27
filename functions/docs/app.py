"""Service endpoints: the OpenAPI spec, Swagger UI and the playground (both served by the API itself, no CDN),
health, and the catch-all `$default` route that answers unknown paths with our 404 problem instead of API
Gateway's own."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, Field

from sessions_api import errors, http, timeutil
from sessions_api.observability import instrument

app = http.create_app()
HERE = FilePath(__file__).resolve().parent
SPEC_FILE = HERE / "openapi.json"  # written by `make openapi` (python -m tools.openapi)
ASSET_DIR = HERE / "swagger_ui"
PLAYGROUND_DIR = HERE / "playground"
BASE = "/api/v1"
HTML_TYPE = "text/html; charset=utf-8"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-initializer.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
PLAYGROUND_ASSETS = {
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Swagger UI sets inline styles, so styles need 'unsafe-inline'; scripts come only from this API.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A static page: it never contains data of a request, let alone a user's (the spec is fetched as JSON).
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sessions API - docs</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-initializer.js"></script>
</body>
</html>
"""


class PlaygroundConfig(BaseModel):
    websocket_url: str = Field(
        description="The live WebSocket API (`wss://…`, `ws://127.0.0.1:<port>` under `make dev`); empty: poll",
        examples=["wss://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/live"],
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(description="The API version this deployment serves", examples=["0.1.0"])
    time: str = Field(description="Server time, RFC 3339 UTC", examples=["2026-01-15T10:30:00.000Z"])


@cache
def spec_text() -> str:
    return SPEC_FILE.read_text(encoding="utf-8")


@cache
def api_version() -> str:
    return str(json.loads(spec_text())["info"]["version"])


@cache
def asset(directory: FilePath, name: str) -> tuple[bytes, str]:
    """(content, ETag) of a file of this package, read once per execution environment."""
    content = (directory / name).read_bytes()
    return content, f'"{hashlib.sha256(content).hexdigest()[:32]}"'


@cache
def live_url() -> str:
    """The WebSocket API the playground streams from (template.yaml's `LIVE_URL`); anything but ws(s): none."""
    url = os.environ.get("LIVE_URL", "").strip()
    return url if urlsplit(url).scheme in ("ws", "wss") and urlsplit(url).netloc else ""


@cache
def playground_csp() -> str:
    """Scripts and styles only from this API, sockets only to it and its WebSocket API; slides render in
    sandboxed srcdoc frames (they inherit this policy, so their inline deck CSS needs 'unsafe-inline')."""
    live = urlsplit(live_url())
    sockets = f" {live.scheme}://{live.netloc}" if live.netloc else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def cached(
    content: bytes | str, content_type: str, tag: str, cache_control: str, headers: dict[str, str] | None = None
) -> Response:
    if http.not_modified(http.header(app, "If-None-Match"), tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": cache_control})
    return Response(
        status_code=200,
        content_type=content_type,
        body=content,
        headers={"ETag": tag, "Cache-Control": cache_control, **SECURITY_HEADERS, **(headers or {})},
    )


def served_file(directory: FilePath, names: dict[str, str], name: str, cache_control: str) -> Any:
    """One of the files `names` lists (by content type), from `directory`; any other name: 404."""
    content_type = names.get(name)
    if content_type is None:
        raise errors.NotFound(f"No file {name!r} here")
    content, tag = asset(directory, name)
    return cached(content, content_type, tag, cache_control)


@app.get(
    f"{BASE}/openapi.json",
    compress=True,
    summary="The OpenAPI 3.1 document of the whole API",
    responses={200: {"description": "The spec", "content": {"application/json": {"schema": {"type": "object"}}}}},
)
def openapi_spec():
    text = spec_text()
    tag = f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'
    return cached(text, http.JSON_CONTENT_TYPE, tag, "no-cache")


@app.get(
    f"{BASE}/docs",
    summary="Swagger UI for this API",
    responses={200: {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def docs_page():
    return Response(
        status_code=200,
        content_type=HTML_TYPE,
        body=PAGE,
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache", **SECURITY_HEADERS},
    )


@app.get(
    f"{BASE}/docs/<name>",
    compress=True,
    summary="A Swagger UI file (script, stylesheet, icon, licence)",
    responses={
        200: {
            "description": "The file",
            "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        304: {"description": "Not modified (`If-None-Match`)"},
    },
)
def docs_asset(name: Annotated[str, Path(max_length=64, examples=["swagger-ui.css"])]):
    # Not fingerprinted: a day of caching, then a cheap revalidation by ETag.
    return served_file(ASSET_DIR, ASSETS, name, "public, max-age=86400")


@app.get(
    f"{BASE}/playground",
    summary="The playground: a web page to try the API (sessions, live chat with stop, the deck and its exports)",
    responses={200: {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def playground_page():
    content, _ = asset(PLAYGROUND_DIR, "index.html")
    csp = playground_csp()
    # The policy names the WebSocket API, so it is part of what a 304 vouches for.
    tag = f'"{hashlib.sha256(content + csp.encode()).hexdigest()[:32]}"'
    return cached(content, HTML_TYPE, tag, "no-cache", {"Content-Security-Policy": csp})


@app.get(
    f"{BASE}/playground/config.json",
    summary="What the playground needs to know about this deployment: where its WebSocket API is",
    responses={200: {"description": "The configuration", "content": {"application/json": {"model": PlaygroundConfig}}}},
)
def playground_config():
    body = PlaygroundConfig(websocket_url=live_url())
    return http.json_response(200, body.model_dump(), {"Cache-Control": "no-cache", **SECURITY_HEADERS})


@app.get(
    f"{BASE}/playground/<name>",
    compress=True,
    summary="A playground file (its script or stylesheet)",
    responses={
        200: {
            "description": "The file",
            "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
            },
        },
        304: {"description": "Not modified (`If-None-Match`)"},
    },
)
def playground_asset(name: Annotated[str, Path(max_length=64, examples=["playground.js"])]):
    # Ours and changed with every deploy, not fingerprinted: revalidate by ETag each time (a 304 is cheap).
    return served_file(PLAYGROUND_DIR, PLAYGROUND_ASSETS, name, "no-cache")


@app.get(
    f"{BASE}/health",
    summary="Liveness: the API answers (no AWS call, so it is cheap and never throttled by a dependency)",
    responses={200: {"description": "Healthy", "content": {"application/json": {"model": Health}}}},
)
def health():
    body = Health(status="ok", version=api_version(), time=timeutil.now_iso())
    return http.json_response(200, body.model_dump(), {"Cache-Control": "no-store"})


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Unknown paths reach this function through `$default`: the resolver's not-found handler answers 404/405.
    return http.handle(app, event, context)
