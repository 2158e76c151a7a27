"""Sessions endpoint group: create, list, continue, get, update, delete, cleanup, fork."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from sessions_api import errors, http
from sessions_api.dal import idempotency
from sessions_api.logic import idempotent
from sessions_api.logic.forks import Forks
from sessions_api.logic.lifecycle import Action as LifecycleAction
from sessions_api.logic.lifecycle import Lifecycle
from sessions_api.logic.policy import Action
from sessions_api.logic.results import Results
from sessions_api.logic.results import markdown as results_markdown
from sessions_api.logic.sessions import ListQuery, Sessions
from sessions_api.logic.sharing import Sharing
from sessions_api.models.api import (
    CleanupIn,
    CleanupOut,
    CreateSessionIn,
    SessionList,
    SessionWithMessages,
    UpdateSessionIn,
)
from sessions_api.models.entities import SessionOut, SessionType, Status
from sessions_api.models.forks import ForkIn
from sessions_api.models.lifecycle import HistoryOut, MetricsOut, ResultsIn, ResultsOut, TransitionIn
from sessions_api.models.types import Moment, Title
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions"
SessionIdPath = Annotated[str, Path(description="`session_` + 16 hex characters, or the client's own id")]


@cache
def sessions() -> Sessions:
    return Sessions(get_settings())


@cache
def sharing() -> Sharing:
    return Sharing(get_settings())


MARKDOWN_CONTENT_TYPE = "text/markdown; charset=utf-8"


@cache
def lifecycle() -> Lifecycle:
    return Lifecycle(get_settings())


@cache
def results() -> Results:
    return Results(get_settings())


def session_response(status: int, session: dict[str, Any], **headers: str):
    return http.json_response(status, session, {"ETag": http.etag(session["version"]), **headers})


@app.post(
    BASE,
    responses={
        201: {"description": "Created", "content": {"application/json": {"model": SessionOut}}},
        200: {
            "description": "The caller's own session `session_id` names, unchanged",
            "content": {"application/json": {"model": SessionOut}},
        },
        409: {
            "description": "conflict: `session_id` is taken (by another user, or by a deleted session), or the "
            "`Idempotency-Key` was used with another body or is in progress"
        },
        **http.problems(429),
    },
)
def create_session(body: Annotated[CreateSessionIn | None, Body()] = None, idempotency_key: http.IdempotencyKey = None):
    caller = http.caller(app)
    request = body or CreateSessionIn()
    result = idempotent.once(
        caller,
        Action.READ,
        session_id=None,
        operation="create_session",
        key=idempotency_key,
        body=request.model_dump(mode="json"),
        produce=lambda: sessions().create_or_get(caller, request),
    )
    if "created" not in result:  # a record stored before creates could find the session already there
        result = {"session_id": result["session_id"], "created": True, "session": result}
    if not result["created"]:
        return session_response(200, result["session"])
    return session_response(201, result["session"], Location=f"{BASE}/{result['session_id']}")


@app.get(BASE, responses={200: {"description": "A page", "content": {"application/json": {"model": SessionList}}}})
def list_sessions(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: http.Cursor = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[Status | None, Query()] = None,
    session_type: Annotated[SessionType | None, Query()] = None,
    date_from: Annotated[Moment | None, Query(description="created at or after (RFC 3339 or date)")] = None,
    date_to: Annotated[Moment | None, Query(description="created at or before (RFC 3339 or date)")] = None,
    offset: Annotated[int | None, Query(ge=0, description="compatibility; prefer cursor")] = None,
    page: Annotated[int | None, Query(ge=1, description="compatibility; prefer cursor")] = None,
    shared: Annotated[
        bool | None, Query(description="`true`: the sessions others shared with me (`limit` and `cursor` only)")
    ] = None,
):
    query = ListQuery(limit, cursor, search, status, session_type, date_from, date_to, offset, page)
    if shared:
        if any(value is not None for value in (search, status, session_type, date_from, date_to, offset, page)):
            raise errors.validation_error("query.shared", "shared=true takes only limit and cursor")
        return http.json_response(200, sharing().shared_with_me(http.caller(app), limit=limit, cursor=cursor))
    return http.json_response(200, sessions().list_sessions(http.caller(app), query))


@app.get(
    f"{BASE}/continue",
    responses={
        200: {"description": "The session", "content": {"application/json": {"model": SessionOut}}},
        **http.problems(404),
    },
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
    responses={
        200: {"description": "The session", "content": {"application/json": {"model": SessionWithMessages}}},
        304: {"description": "Not modified: `If-None-Match` names the current `ETag`"},
    },
)
def get_session(
    session_id: SessionIdPath,
    include: Annotated[str | None, Query(pattern="^messages$", description="`messages` embeds the first page")] = None,
    if_none_match: http.IfNoneMatch = None,
):
    session = sessions().get(http.caller(app), session_id, include_messages=include == "messages")
    tag = http.etag(session["version"])
    if include is None and http.not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return session_response(200, session)


@app.patch(
    f"{BASE}/<session_id>",
    responses={200: {"description": "Updated", "content": {"application/json": {"model": SessionOut}}}},
)
def update_session(
    session_id: SessionIdPath,
    body: Annotated[UpdateSessionIn | None, Body()] = None,
    title: Annotated[Title | None, Query(description="renames, for clients of the older API")] = None,
    if_match: http.IfMatch = None,
):
    changes = body.model_dump(exclude_unset=True) if body else {}
    if title is not None and "title" not in changes:
        changes["title"] = title
    request = UpdateSessionIn.model_validate(changes) if title is not None else body or UpdateSessionIn()
    session = sessions().update(http.caller(app), session_id, request, if_match=http.parse_if_match(if_match))
    return session_response(200, session)


@app.delete(f"{BASE}/<session_id>", responses={204: {"description": "Deleted"}})
def delete_session(session_id: SessionIdPath):
    sessions().delete(http.caller(app), session_id)
    return Response(status_code=204)


# -- lifecycle: status transitions, results, metrics, history (logic/lifecycle.py holds the table) ---------
TRANSITION_RESPONSES = {
    200: {"description": "The session after the transition", "content": {"application/json": {"model": SessionOut}}},
    409: {"description": "invalid_state_transition: `current_status` and `allowed_actions` say what is possible"},
}


def _transition(session_id: str, action: LifecycleAction, body: TransitionIn | None, if_match: str | None):
    session = lifecycle().transition(
        http.caller(app),
        session_id,
        action,
        reason=body.reason if body else None,
        if_match=http.parse_if_match(if_match),
    )
    return session_response(200, session)


@app.post(f"{BASE}/<session_id>/cancel", responses=TRANSITION_RESPONSES)
def cancel_session(
    session_id: SessionIdPath, body: Annotated[TransitionIn | None, Body()] = None, if_match: http.IfMatch = None
):
    return _transition(session_id, LifecycleAction.CANCEL, body, if_match)


@app.post(f"{BASE}/<session_id>/pause", responses=TRANSITION_RESPONSES)
def pause_session(
    session_id: SessionIdPath, body: Annotated[TransitionIn | None, Body()] = None, if_match: http.IfMatch = None
):
    return _transition(session_id, LifecycleAction.PAUSE, body, if_match)


@app.post(f"{BASE}/<session_id>/resume", responses=TRANSITION_RESPONSES)
def resume_session(
    session_id: SessionIdPath, body: Annotated[TransitionIn | None, Body()] = None, if_match: http.IfMatch = None
):
    return _transition(session_id, LifecycleAction.RESUME, body, if_match)


@app.post(f"{BASE}/<session_id>/end", responses=TRANSITION_RESPONSES)
def end_session(
    session_id: SessionIdPath, body: Annotated[TransitionIn | None, Body()] = None, if_match: http.IfMatch = None
):
    return _transition(session_id, LifecycleAction.END, body, if_match)


@app.put(
    f"{BASE}/<session_id>/results",
    responses={200: {"description": "Stored", "content": {"application/json": {"model": ResultsOut}}}},
)
def put_results(session_id: SessionIdPath, body: Annotated[ResultsIn, Body()], if_match: http.IfMatch = None):
    stored = results().put(http.caller(app), session_id, body, if_match=http.parse_if_match(if_match))
    return http.json_response(200, stored)


@app.get(
    f"{BASE}/<session_id>/results",
    responses={
        200: {
            "description": "The results",
            "content": {"application/json": {"model": ResultsOut}, "text/markdown": {"schema": {"type": "string"}}},
        }
    },
)
def get_results(
    session_id: SessionIdPath,
    format: Annotated[
        Literal["json", "markdown"] | None, Query(description="`markdown` renders a document; default JSON")
    ] = None,
):
    found, title = results().get(http.caller(app), session_id)
    wants_markdown = format == "markdown" or (format is None and "text/markdown" in (http.header(app, "Accept") or ""))
    if wants_markdown:
        return Response(status_code=200, content_type=MARKDOWN_CONTENT_TYPE, body=results_markdown(found, title))
    return http.json_response(200, found)


@app.get(
    f"{BASE}/<session_id>/metrics",
    responses={200: {"description": "The metrics", "content": {"application/json": {"model": MetricsOut}}}},
)
def get_metrics(session_id: SessionIdPath):
    return http.json_response(200, sessions().metrics(http.caller(app), session_id))


@app.get(
    f"{BASE}/<session_id>/history",
    responses={200: {"description": "A page", "content": {"application/json": {"model": HistoryOut}}}},
)
def get_history(
    session_id: SessionIdPath,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: http.Cursor = None,
    order: Annotated[Literal["asc", "desc"], Query(description="`asc` (oldest first, default) or `desc`")] = "asc",
):
    page = sessions().history(http.caller(app), session_id, limit=limit, cursor=cursor, descending=order == "desc")
    return http.json_response(200, page)


# -- forks ------------------------------------------------------------------------------------------------
@cache
def forks() -> Forks:
    return Forks(get_settings())


@app.post(
    f"{BASE}/<session_id>/fork",
    responses={
        201: {
            "description": "The fork: a new session of the caller's",
            "content": {"application/json": {"model": SessionOut}},
        },
        409: {"description": "conflict: the `Idempotency-Key` was used with another body or is in progress"},
        **http.problems(404, 413, 429),
    },
)
def fork_session(
    session_id: SessionIdPath,
    body: Annotated[ForkIn | None, Body()] = None,
    idempotency_key: http.IdempotencyKey = None,
):
    caller = http.caller(app)
    request = body or ForkIn()
    remaining = app.lambda_context.get_remaining_time_in_millis() if app.lambda_context else 25_000
    # Kept like a create's record (no session yet: the fork is new), and a replay checked against the fork, the
    # caller's own: the source's partition and access are another user's to take away.
    result = idempotent.once(
        caller,
        Action.READ,
        session_id=None,
        operation="fork_session",
        key=idempotency_key,
        body={"session_id": session_id, **request.model_dump(mode="json")},
        produce=lambda: forks().fork(caller, session_id, request, remaining_ms=remaining),
    )
    return session_response(201, result["session"], Location=f"{BASE}/{result['session_id']}")


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
