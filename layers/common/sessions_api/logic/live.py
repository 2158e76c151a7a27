"""Live streaming over the WebSocket API, the live function's side: connections, and subscriptions to chat
runs (the worker's side, pushing events: `logic/subscribers.py`).

A subscriber receives each event of a run it may read once and in order: the events after the `after` it
sends, then the new ones as the worker writes them. A run already finished when the subscription is stored
is replayed here; one still going is the worker's to deliver.

Runs a worker does not end itself (a queued run cancelled, a crashed worker's run recovered) reach their
subscribers' last events only by polling; clients fall back to it when a run goes quiet.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError

from sessions_api import errors
from sessions_api.dal.live_repo import Gone, LiveRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.identity import Caller
from sessions_api.logic.chat import Chat
from sessions_api.logic.subscribers import encode, problem_message
from sessions_api.logic.turns import RunRequest
from sessions_api.models.entities import plain
from sessions_api.models.messages import NewChatRunIn
from sessions_api.settings import Settings

REPLAY_PAGE = 500


class Live:
    """The live API's use cases, for one caller on one connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.repo = LiveRepo(settings.live_connections_url)

    def connect(self, caller: Caller, connection_id: str) -> None:
        self.repo.connect(connection_id, user=caller.user_id, email=caller.email, now=int(time.time()))

    def disconnect(self, connection_id: str) -> None:
        self.repo.disconnect(connection_id)

    def receive(self, caller: Caller, connection_id: str, body: str) -> None:
        """One message from the client; a bad one is answered with a problem, and changes nothing."""
        request_id = None
        try:
            try:
                message = json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
                raise errors.BadRequest('A message is a JSON object, e.g. {"action": "subscribe", …}') from None
            if not isinstance(message, dict):
                raise errors.BadRequest("A message is a JSON object")
            request_id = message.get("request_id") if isinstance(message.get("request_id"), str) else None
            action = message.get("action")
            if action == "subscribe":
                self.subscribe(caller, connection_id, request_id or "", _after(message.get("after", 0)))
            elif action == "chat":
                self.chat(caller, connection_id, {key: value for key, value in message.items() if key != "action"})
            else:
                raise errors.BadRequest(f'Unknown action {action!r}: send "subscribe" or "chat"')
        except errors.ApiError as refused:
            self._send(connection_id, problem_message(refused, request_id))

    def subscribe(self, caller: Caller, connection_id: str, request_id: str, after: int) -> None:
        """Follow a run the caller may read: its events after `after`, then live (404 for anyone else's)."""
        access, run = Chat(self.settings).readable_run(caller, request_id)
        subscription: dict[str, Any] = {
            "session_id": run["session_id"],
            "request_id": request_id,
            "connection_id": connection_id,
            "user": caller.user_id,
            "after": after,
        }
        if access.share is not None:
            subscription["share"] = {"PK": access.share["PK"], "SK": access.share["SK"]}
        stored = self.repo.subscribe(subscription, now=int(time.time()))
        if stored is None:
            raise errors.Conflict(f"This connection follows run {request_id} already; to resume, connect again")
        if not stored:
            return  # the connection closed meanwhile
        self._send(connection_id, {"type": "subscribed", "request_id": request_id, "after": after})
        # Read after the subscription is stored: a run still going is the worker's to deliver.
        now = RunsRepo().get(run["session_id"], request_id) or run
        if now.get("phase") == "done" and self.repo.claim(subscription, by="replay"):
            repo = RunsRepo()
            while True:
                events = plain(repo.events(run["session_id"], request_id, after=after, limit=REPLAY_PAGE))
                for event in events:
                    if not self._send(connection_id, {"request_id": request_id, **event}):
                        return
                if len(events) < REPLAY_PAGE:
                    return
                after = events[-1]["id"]

    def chat(self, caller: Caller, connection_id: str, body: dict[str, Any]) -> None:
        """`POST /chat/async` over the socket: accepted, then its events."""
        try:
            chat = NewChatRunIn.model_validate(body)
        except ValidationError as invalid:
            details = [
                {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"], "type": error["type"]}
                for error in invalid.errors()
            ]
            raise errors.ValidationFailed("The chat is not valid", errors=details) from None
        context = chat.slide_context.model_dump(mode="json") if chat.slide_context else None
        request = RunRequest(chat.message, chat.metadata, chat.agent_name, chat.if_busy, context)
        accepted = Chat(self.settings).start(caller, chat.session_id, request)
        request_id = accepted["request_id"]
        self._send(connection_id, {"type": "accepted", "request_id": request_id, "session_id": accepted["session_id"]})
        self.subscribe(caller, connection_id, request_id, 0)

    def _send(self, connection_id: str, message: dict[str, Any]) -> bool:
        try:
            self.repo.post(connection_id, encode(message))
        except Gone:
            self.repo.disconnect(connection_id)
            return False
        return True


def _after(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.ValidationFailed(
            "after is the id of the last event you have: an integer ≥ 0",
            errors=[{"field": "after", "message": "must be an integer ≥ 0", "type": "int"}],
        )
    return value
