"""Sharing and comments endpoint group: share, list shares, revoke; comment, list comments."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from sessions_api import http
from sessions_api.dal import idempotency
from sessions_api.logic import idempotent
from sessions_api.logic.policy import Action
from sessions_api.logic.sharing import Sharing
from sessions_api.models.sharing import CommentIn, CommentList, CommentOut, ShareIn, ShareList, ShareOut
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions"
SessionIdPath = Annotated[str, Path(description="`session_` + 16 hex characters, or the client's own id")]
Limit = Annotated[int, Query(ge=1, le=100)]


@cache
def sharing() -> Sharing:
    return Sharing(get_settings())


@app.post(
    f"{BASE}/<session_id>/share",
    responses={
        201: {"description": "Shared", "content": {"application/json": {"model": ShareOut}}},
        **http.problems(409),
    },
)
def share_session(
    session_id: SessionIdPath, body: Annotated[ShareIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    caller = http.caller(app)
    session_url = f"{http.api_url(app, get_settings().api_base_path)}/sessions/{session_id}"
    result = idempotent.once(
        caller,
        Action.MANAGE,
        session_id=session_id,
        operation="share",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        produce=lambda: sharing().share(caller, session_id, body, session_url=session_url),
    )
    return http.json_response(201, result)


@app.get(
    f"{BASE}/<session_id>/shares",
    responses={200: {"description": "Who has access", "content": {"application/json": {"model": ShareList}}}},
)
def list_shares(session_id: SessionIdPath, limit: Limit = 50, cursor: http.Cursor = None):
    return http.json_response(200, sharing().grants(http.caller(app), session_id, limit=limit, cursor=cursor))


@app.delete(f"{BASE}/<session_id>/shares/<share_id>", responses={204: {"description": "Revoked"}})
def revoke_share(session_id: SessionIdPath, share_id: Annotated[str, Path(max_length=64)]):
    sharing().revoke(http.caller(app), session_id, share_id)
    return Response(status_code=204)


@app.post(
    f"{BASE}/<session_id>/comments",
    responses={
        201: {"description": "Commented", "content": {"application/json": {"model": CommentOut}}},
        **http.problems(409),
    },
)
def create_comment(
    session_id: SessionIdPath, body: Annotated[CommentIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    caller = http.caller(app)
    result = idempotent.once(
        caller,
        Action.COMMENT,
        session_id=session_id,
        operation="comment",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        produce=lambda: sharing().comment(caller, session_id, body),
    )
    return http.json_response(201, result)


@app.get(
    f"{BASE}/<session_id>/comments",
    responses={200: {"description": "Oldest first", "content": {"application/json": {"model": CommentList}}}},
)
def list_comments(session_id: SessionIdPath, limit: Limit = 50, cursor: http.Cursor = None):
    return http.json_response(200, sharing().list_comments(http.caller(app), session_id, limit=limit, cursor=cursor))


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
