"""Messages and chat endpoint group: append, list, get and delete messages; chat with a model."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from sessions_api import http
from sessions_api.dal import idempotency
from sessions_api.logic import idempotent
from sessions_api.logic.chat import Chat
from sessions_api.logic.messages import Messages
from sessions_api.logic.policy import Action
from sessions_api.models.messages import (
    AppendIn,
    AppendOut,
    ChatIn,
    ChatOut,
    MessageBatchIn,
    MessageOut,
    MessagePage,
    NewChatIn,
)
from sessions_api.observability import instrument
from sessions_api.providers import provider_for
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/sessions"
SessionIdPath = Annotated[str, Path(description="`session_` followed by 16 lowercase hex characters")]
MessageIdPath = Annotated[str, Path(max_length=64, description="`msg_` followed by a ULID")]


@cache
def messages() -> Messages:
    return Messages(get_settings())


@cache
def chat_service() -> Chat:
    return Chat(get_settings(), provider_for(get_settings()))


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


def _chat(session_id: str | None, body: ChatIn):
    caller = http.caller(app)
    request_id = (app.current_event.raw_event.get("requestContext") or {}).get("requestId")
    result = chat_service().chat(caller, session_id, body, request_id=request_id)
    return http.json_response(200, result)


@app.post(
    "/api/v1/chat",
    responses={
        200: {"description": "The model's answer", "content": {"application/json": {"model": ChatOut}}},
        **http.problems(402, 403, 404, 409, 502),
    },
)
def chat(body: Annotated[NewChatIn, Body()]):
    return _chat(body.session_id, ChatIn(message=body.message, metadata=body.metadata))


@app.post(
    f"{BASE}/<session_id>/chat",
    responses={
        200: {"description": "The model's answer", "content": {"application/json": {"model": ChatOut}}},
        **http.problems(402, 409, 502),
    },
)
def session_chat(session_id: SessionIdPath, body: Annotated[ChatIn, Body()]):
    return _chat(session_id, body)


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
