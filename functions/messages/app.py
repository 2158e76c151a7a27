"""Messages and chat endpoint group: append, list, get and delete messages; chat with a model."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from sessions_api import errors, http
from sessions_api.dal import idempotency
from sessions_api.logic import idempotent
from sessions_api.logic.chat import Chat
from sessions_api.logic.messages import Messages
from sessions_api.logic.policy import Action
from sessions_api.logic.turns import RunRequest
from sessions_api.models.messages import (
    AppendIn,
    AppendOut,
    ChatOut,
    ChatRunIn,
    MessageBatchIn,
    MessageOut,
    MessagePage,
    NewChatRunIn,
    RunAccepted,
    RunCancelled,
    RunEvent,
    RunPage,
    RunPoll,
)
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions"
SessionIdPath = Annotated[str, Path(description="`session_` + 16 hex characters, or the client's own id")]
MessageIdPath = Annotated[str, Path(max_length=64, description="`msg_` followed by a ULID")]


@cache
def messages() -> Messages:
    return Messages(get_settings())


@cache
def chat_service() -> Chat:
    return Chat(get_settings())


@app.post(
    f"{BASE}/<session_id>/messages",
    responses={
        201: {
            "description": "The message, or `{messages: [...]}` for a batch",
            "content": {"application/json": {"model": AppendOut}},
        },
        **http.problems(409),
    },
)
def append_messages(
    session_id: SessionIdPath, body: Annotated[AppendIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    caller = http.caller(app)
    batch = isinstance(body, MessageBatchIn)
    incoming = body.messages if isinstance(body, MessageBatchIn) else [body]

    def produce() -> dict[str, Any]:
        stored = messages().append(caller, session_id, incoming)
        return {"messages": stored} if batch else stored[0]

    result = idempotent.once(
        caller,
        Action.WRITE,
        session_id=session_id,
        operation="append_messages",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        produce=produce,
    )
    headers = None if batch else {"Location": f"{BASE}/{session_id}/messages/{result['message_id']}"}
    return http.json_response(201, result, headers)


@app.get(
    f"{BASE}/<session_id>/messages",
    responses={200: {"description": "A page", "content": {"application/json": {"model": MessagePage}}}},
)
def list_messages(
    session_id: SessionIdPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: http.Cursor = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="`asc` oldest first (default), `desc` newest first")
    ] = "asc",
):
    page = messages().list(http.caller(app), session_id, limit=limit, cursor=cursor, order=order)
    return http.json_response(200, page)


@app.get(
    f"{BASE}/<session_id>/messages/<message_id>",
    responses={200: {"description": "The message", "content": {"application/json": {"model": MessageOut}}}},
)
def get_message(session_id: SessionIdPath, message_id: MessageIdPath):
    return http.json_response(200, messages().get(http.caller(app), session_id, message_id))


@app.delete(f"{BASE}/<session_id>/messages/<message_id>", responses={204: {"description": "Deleted"}})
def delete_message(session_id: SessionIdPath, message_id: MessageIdPath):
    messages().delete(http.caller(app), session_id, message_id)
    return Response(status_code=204)


# -- chat runs -----------------------------------------------------------------------------------------
def _start(session_id: str | None, body: ChatRunIn, idempotency_key: str | None) -> dict[str, Any]:
    """Accept the run once per `Idempotency-Key` (the same key on any chat route answers the same run)."""
    caller = http.caller(app)
    context = body.slide_context.model_dump(mode="json") if body.slide_context else None
    request = RunRequest(body.message, body.metadata, body.agent_name, body.if_busy, context)
    return idempotent.once(
        caller,
        Action.WRITE,
        session_id=session_id,
        operation="chat",
        key=idempotency_key,
        body={"session_id": session_id, **body.model_dump(mode="json", exclude={"session_id"})},
        produce=lambda: chat_service().start(caller, session_id, request),
    )


def _poll_url(request_id: str) -> str:
    return f"/api/v1/chat/poll/{request_id}"


def _accepted(accepted: dict[str, Any]):
    body = {**{name: accepted[name] for name in ("request_id", "session_id")}, "status": "queued"}
    body["poll_url"] = _poll_url(accepted["request_id"])
    return http.json_response(202, body, {"Location": body["poll_url"]})


def _chat(session_id: str | None, body: ChatRunIn, idempotency_key: str | None):
    """A run awaited: its answer when it ends in time, else 202 with where to poll it."""
    started = time.perf_counter()
    accepted = _start(session_id, body, idempotency_key)
    run = chat_service().wait(accepted, seconds=get_settings().sync_chat_wait_seconds)
    if run["status"] in ("queued", "running"):
        return _accepted(accepted)
    ids = {"session_id": run["session_id"], "request_id": run["request_id"]}
    ids |= {"user_message_id": run["user_message_id"], "message_id": run["message_id"]}
    error = run.get("error") or {}
    if run["status"] == "error" and error.get("code") == "insufficient_balance":
        raise errors.InsufficientBalance(error["detail"], extra=ids)
    if run["status"] == "error":
        problem: errors.ApiError = (
            errors.ServiceUnavailable(
                f"The model is unavailable ({error.get('code')}); your message is stored, retry the chat", retry_after=5
            )
            if error.get("retryable")
            else errors.ModelFailed(f"The model could not answer ({error.get('code')}); your message is stored")
        )
        problem.extra = ids
        raise problem
    result = run["result"] or {}
    out = {
        "response": result.get("content", ""),
        **ids,
        "model_id": run.get("model_id") or "",
        "execution_time": round(time.perf_counter() - started, 3),
        "usage": result.get("usage"),
        "stopped": run["status"] == "cancelled",
    }
    return http.json_response(200, out)


CHAT_PROBLEMS = http.problems(402, 403, 404, 409, 502)


@app.post(
    "/api/v1/chat",
    responses={
        200: {"description": "The model's answer", "content": {"application/json": {"model": ChatOut}}},
        202: {"description": "Still running: poll it", "content": {"application/json": {"model": RunAccepted}}},
        **CHAT_PROBLEMS,
    },
)
def chat(body: Annotated[NewChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None):
    return _chat(body.session_id, body, idempotency_key)


@app.post(
    f"{BASE}/<session_id>/chat",
    responses={
        200: {"description": "The model's answer", "content": {"application/json": {"model": ChatOut}}},
        202: {"description": "Still running: poll it", "content": {"application/json": {"model": RunAccepted}}},
        **CHAT_PROBLEMS,
    },
)
def session_chat(
    session_id: SessionIdPath, body: Annotated[ChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    return _chat(session_id, body, idempotency_key)


ASYNC_RESPONSES = {
    202: {"description": "Accepted: poll it", "content": {"application/json": {"model": RunAccepted}}},
    **CHAT_PROBLEMS,
}


@app.post("/api/v1/chat/async", responses=ASYNC_RESPONSES)
def chat_async(body: Annotated[NewChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None):
    return _accepted(_start(body.session_id, body, idempotency_key))


@app.post(f"{BASE}/<session_id>/chat/async", responses=ASYNC_RESPONSES)
def session_chat_async(
    session_id: SessionIdPath, body: Annotated[ChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    return _accepted(_start(session_id, body, idempotency_key))


def _stream(session_id: str | None, body: ChatRunIn, idempotency_key: str | None) -> Response:
    accepted = _start(session_id, body, idempotency_key)
    remaining = app.lambda_context.get_remaining_time_in_millis() if app.lambda_context else 25_000
    events, _ = chat_service().events_until_done(accepted, remaining_ms=remaining)
    text = "".join(f"id: {event['id']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events)
    headers = {"Cache-Control": "no-cache", "X-Request-Id": accepted["request_id"]}
    return Response(status_code=200, content_type="text/event-stream", body=text, headers=headers)


# One server-sent event: its `id` and its `data`, a RunEvent as JSON.
SSE_EVENT = {
    "type": "object",
    "required": ["id", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": RunEvent.model_json_schema(),
        },
    },
}
STREAM_RESPONSES = {
    200: {
        "description": "The run's events as server-sent events, ending with `complete` or `error` (API Gateway's HTTP "
        "API delivers the body when the run ends; a run longer than the function's time ends the stream early: poll "
        "the rest with the `X-Request-Id` header's run)",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    **CHAT_PROBLEMS,
}


@app.post("/api/v1/chat/stream", responses=STREAM_RESPONSES)
def chat_stream(body: Annotated[NewChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None):
    return _stream(body.session_id, body, idempotency_key)


@app.post(f"{BASE}/<session_id>/chat/stream", responses=STREAM_RESPONSES)
def session_chat_stream(
    session_id: SessionIdPath, body: Annotated[ChatRunIn, Body()], idempotency_key: http.IdempotencyKey = None
):
    return _stream(session_id, body, idempotency_key)


RequestIdPath = Annotated[str, Path(max_length=120, description="The run's `request_id`")]


@app.get(
    "/api/v1/chat/poll/<request_id>",
    responses={200: {"description": "The run and its new events", "content": {"application/json": {"model": RunPoll}}}},
)
def poll(
    request_id: RequestIdPath,
    after_message_id: Annotated[int, Query(ge=0, le=10_000_000, description="The last event id you have")] = 0,
    wait: Annotated[float, Query(ge=0, le=20, description="Seconds to wait for a new event (long poll)")] = 0,
):
    remaining = app.lambda_context.get_remaining_time_in_millis() if app.lambda_context else 25_000
    view = chat_service().poll(http.caller(app), request_id, after=after_message_id, wait=wait, remaining_ms=remaining)
    public = {
        name: view[name]
        for name in ("request_id", "session_id", "status", "events", "last_message_id", "result", "error")
    }
    return http.json_response(200, public)


@app.post(
    "/api/v1/chat/runs/<request_id>/cancel",
    responses={
        200: {"description": "Cancelled", "content": {"application/json": {"model": RunCancelled}}},
        **http.problems(409),
    },
)
def cancel_run(request_id: RequestIdPath):
    return http.json_response(200, chat_service().cancel(http.caller(app), request_id))


@app.get(
    f"{BASE}/<session_id>/runs",
    responses={
        200: {"description": "The session's runs, newest first", "content": {"application/json": {"model": RunPage}}}
    },
)
def list_runs(session_id: SessionIdPath, limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: http.Cursor = None):
    return http.json_response(200, chat_service().runs(http.caller(app), session_id, limit=limit, cursor=cursor))


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
