"""Sessions endpoint group: create, list, continue, get, update, delete, cleanup."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from sessions_api import http
from sessions_api.dal import idempotency
from sessions_api.logic.sessions import ListQuery, Sessions
from sessions_api.models.api import (
    CleanupIn,
    CleanupOut,
    CreateSessionIn,
    SessionList,
    SessionWithMessages,
    UpdateSessionIn,
)
from sessions_api.models.entities import SessionOut, SessionType, Status
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions"
SessionIdPath = Annotated[str, Path(description="`session_` followed by 16 lowercase hex characters")]


@cache
def sessions() -> Sessions:
    return Sessions(get_settings())


def session_response(status: int, session: dict[str, Any], **headers: str):
    return http.json_response(status, session, {"ETag": http.etag(session["version"]), **headers})


@app.post(BASE, responses={201: {"description": "Created", "content": {"application/json": {"model": SessionOut}}}})
def create_session(body: Annotated[CreateSessionIn | None, Body()] = None):
    caller = http.caller(app)
    request = body or CreateSessionIn()
    result = idempotency.run_once(
        operation="create_session",
        user=caller.user_id,
        key=http.header(app, "Idempotency-Key"),
        body=request.model_dump(mode="json"),
        produce=lambda: sessions().create(caller, request),
    )
    return session_response(201, result, Location=f"{BASE}/{result['session_id']}")


@app.get(BASE, responses={200: {"description": "A page", "content": {"application/json": {"model": SessionList}}}})
def list_sessions(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[Status | None, Query()] = None,
    session_type: Annotated[SessionType | None, Query()] = None,
    date_from: Annotated[datetime | None, Query(description="created at or after (RFC 3339 or date)")] = None,
    date_to: Annotated[datetime | None, Query(description="created at or before (RFC 3339 or date)")] = None,
    offset: Annotated[int | None, Query(ge=0, description="compatibility; prefer cursor")] = None,
    page: Annotated[int | None, Query(ge=1, description="compatibility; prefer cursor")] = None,
):
    query = ListQuery(limit, cursor, search, status, session_type, date_from, date_to, offset, page)
    return http.json_response(200, sessions().list(http.caller(app), query))


@app.get(
    f"{BASE}/continue",
    responses={200: {"description": "The session", "content": {"application/json": {"model": SessionOut}}}},
)
def continue_session():
    session = sessions().continue_latest(http.caller(app))
    return session_response(200, session)


@app.post(
    f"{BASE}/cleanup",
    responses={200: {"description": "Deleted", "content": {"application/json": {"model": CleanupOut}}}},
)
def cleanup_sessions(body: Annotated[CleanupIn, Body()]):
    return http.json_response(200, sessions().cleanup(http.caller(app), body.session_ids))


@app.get(
    f"{BASE}/<session_id>",
    responses={200: {"description": "The session", "content": {"application/json": {"model": SessionWithMessages}}}},
)
def get_session(
    session_id: SessionIdPath,
    include: Annotated[str | None, Query(pattern="^messages$", description="`messages` embeds the first page")] = None,
):
    session = sessions().get(http.caller(app), session_id, include_messages=include == "messages")
    tag = http.etag(session["version"])
    if include is None and http.header(app, "If-None-Match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    return session_response(200, session)


@app.patch(
    f"{BASE}/<session_id>",
    responses={200: {"description": "Updated", "content": {"application/json": {"model": SessionOut}}}},
)
def update_session(
    session_id: SessionIdPath,
    body: Annotated[UpdateSessionIn | None, Body()] = None,
    title: Annotated[str | None, Query(description="renames, for clients of the older API")] = None,
):
    changes = body.model_dump(exclude_unset=True) if body else {}
    if title is not None and "title" not in changes:
        changes["title"] = title
    request = UpdateSessionIn.model_validate(changes) if title is not None else body or UpdateSessionIn()
    session = sessions().update(http.caller(app), session_id, request, if_match=http.if_match_version(app))
    return session_response(200, session)


@app.delete(f"{BASE}/<session_id>", responses={204: {"description": "Deleted"}})
def delete_session(session_id: SessionIdPath):
    sessions().delete(http.caller(app), session_id)
    return Response(status_code=204)


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
