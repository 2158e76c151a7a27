"""Exports endpoint group: the session as a PPTX, PDF, DOCX, Markdown or JSON file, downloaded from S3."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

import render
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from sessions_api import errors, http
from sessions_api.dal import idempotency
from sessions_api.logic import idempotent
from sessions_api.logic.exports import Exports, format_from_accept
from sessions_api.logic.policy import Action
from sessions_api.models.decks import ExportFormat, ExportIn, ExportList, ExportOut
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions/<session_id>"
SessionIdPath = Annotated[str, Path(description="`session_` + 16 hex characters, or the client's own id")]
AcceptHeader = Annotated[
    str | None,
    Header(alias="Accept", description="A file type (e.g. `application/pdf`) picks the format and answers 303"),
]
FormatQuery = Annotated[ExportFormat | None, Query(description="`pptx` (default), `pdf`, `docx`, `markdown`, `json`")]


@cache
def exports() -> Exports:
    return Exports(get_settings(), _render)


def _render(export_format: str, source: dict[str, Any]) -> bytes:
    """The file, or a 422 naming the slide over a cap of `render.limits` (nothing is stored then)."""
    try:
        return render.render(export_format, source)
    except render.DeckTooComplex as refused:
        raise errors.validation_error(f"slide_deck.slides.{refused.slide_number - 1}", str(refused)) from refused


def _format(body_format: ExportFormat | None, query_format: ExportFormat | None, accept: str | None) -> ExportFormat:
    if body_format and query_format and body_format != query_format:
        raise errors.validation_error("query.format", "the body and the query name different formats")
    return body_format or query_format or format_from_accept(accept) or ExportFormat.PPTX


def _redirect(export: dict[str, Any]):
    return http.json_response(303, export, {"Location": export["download_url"], "Cache-Control": "no-store"})


@app.post(
    f"{BASE}/export",
    responses={
        201: {"description": "Exported", "content": {"application/json": {"model": ExportOut}}},
        303: {"description": "`?download=true` or an `Accept` naming the file type: the download (Location)"},
    },
)
def create_export(
    session_id: SessionIdPath,
    idempotency_key: http.IdempotencyKey = None,
    body: Annotated[ExportIn | None, Body()] = None,
    format: FormatQuery = None,
    download: Annotated[bool, Query(description="`true`: answer 303 to the file")] = False,
    accept: AcceptHeader = None,
):
    export_format = _format(body.format if body else None, format, accept)
    caller = http.caller(app)
    summary = idempotent.once(
        caller,
        Action.EXPORT,
        session_id=session_id,
        operation="create_export",
        key=idempotency_key,
        body={"session_id": session_id, "format": str(export_format)},
        produce=lambda: exports().create(caller, session_id, export_format),
    )
    export = exports().present(summary)  # a replay gets a fresh link to the same file
    if download or format_from_accept(accept) is export_format:
        return _redirect(export)
    location = f"/api/v1/sessions/{session_id}/exports/{export['export_id']}"
    return http.json_response(201, export, {"Location": location})


@app.get(
    f"{BASE}/export",
    responses={303: {"description": "The download (Location); an export of unchanged content is reused"}},
)
def download_export(session_id: SessionIdPath, format: FormatQuery = None, accept: AcceptHeader = None):
    summary = exports().latest_or_create(http.caller(app), session_id, _format(None, format, accept))
    return _redirect(exports().present(summary))


@app.get(
    f"{BASE}/exports",
    responses={200: {"description": "Newest first", "content": {"application/json": {"model": ExportList}}}},
)
def list_exports(
    session_id: SessionIdPath,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: http.Cursor = None,
):
    return http.json_response(200, exports().list(http.caller(app), session_id, limit=limit, cursor=cursor))


@app.get(
    f"{BASE}/exports/<export_id>",
    responses={200: {"description": "The export", "content": {"application/json": {"model": ExportOut}}}},
)
def get_export(session_id: SessionIdPath, export_id: Annotated[str, Path(max_length=64)]):
    return http.json_response(200, exports().get(http.caller(app), session_id, export_id))


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
