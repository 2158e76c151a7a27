"""Slides endpoint group: the session's deck, replaced whole or one slide at a time."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from sessions_api import http
from sessions_api.dal import idempotency
from sessions_api.logic.decks import Decks
from sessions_api.models.decks import DeckOut, Slide, SlideDeck, SlideId, SlideIn, SlideOut
from sessions_api.observability import instrument

app = http.create_app()
BASE = "/api/v1/sessions/<session_id>/slides"
SessionIdPath = Annotated[str, Path(description="`session_` + 16 hex characters, or the client's own id")]
SlideIdPath = Annotated[SlideId, Path(description="The slide's id within the deck")]


@cache
def decks() -> Decks:
    return Decks()


def deck_response(status: int, deck: dict[str, Any]):
    return http.json_response(status, deck, {"ETag": http.etag(deck["version"])})


@app.get(BASE, responses={200: {"description": "The deck", "content": {"application/json": {"model": DeckOut}}}})
def get_deck(session_id: SessionIdPath, if_none_match: http.IfNoneMatch = None):
    deck = decks().get(http.caller(app), session_id)
    tag = http.etag(deck["version"])
    if http.not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return deck_response(200, deck)


@app.put(BASE, responses={200: {"description": "Replaced", "content": {"application/json": {"model": DeckOut}}}})
def replace_deck(session_id: SessionIdPath, body: Annotated[SlideDeck, Body()], if_match: http.IfMatch = None):
    deck = decks().replace(http.caller(app), session_id, body, if_match=http.parse_if_match(if_match))
    return deck_response(200, deck)


@app.put(
    f"{BASE}/<slide_id>",
    responses={
        200: {"description": "Replaced", "content": {"application/json": {"model": SlideOut}}},
        201: {"description": "Added at the end", "content": {"application/json": {"model": SlideOut}}},
    },
)
def put_slide(
    session_id: SessionIdPath, slide_id: SlideIdPath, body: Annotated[SlideIn, Body()], if_match: http.IfMatch = None
):
    slide = Slide(slide_id=slide_id, html=body.html, scripts=body.scripts)
    result, created = decks().put_slide(http.caller(app), session_id, slide, if_match=http.parse_if_match(if_match))
    return http.json_response(201 if created else 200, result, {"ETag": http.etag(result["version"])})


@app.delete(f"{BASE}/<slide_id>", responses={204: {"description": "Deleted"}})
def delete_slide(session_id: SessionIdPath, slide_id: SlideIdPath, if_match: http.IfMatch = None):
    version = decks().delete_slide(http.caller(app), session_id, slide_id, if_match=http.parse_if_match(if_match))
    return Response(status_code=204, headers={"ETag": http.etag(version)})


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_context(context)
    return http.handle(app, event, context)
