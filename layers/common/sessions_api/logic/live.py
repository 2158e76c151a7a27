"""Live streaming over the WebSocket API: connections, subscriptions to chat runs, and the worker's pushes.

A subscriber receives each event of a run it may read once and in order: the events after the `after` it
sends, then the new ones as the worker writes them. Who delivers a subscription is decided once, by a
conditional write (`LiveRepo.claim`): the subscribing function when the run has already finished, else the
worker running it, which keeps the events it wrote in memory for late subscribers. The worker caches a run's
subscribers and reads them again every `REFRESH_SECONDS` (a Query, and the shares of its sharee
subscribers, so a revoked share stops the events within that time), never per event: N subscribers cost it
N posts per coalesced event.

Runs a worker does not end itself (a queued run cancelled, a crashed worker's run recovered) reach their
subscribers' last events only by polling; clients fall back to it when a run goes quiet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from sessions_api import errors, timeutil
from sessions_api.dal.live_repo import Gone, LiveRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.identity import Caller
from sessions_api.logic import policy
from sessions_api.logic.chat import Chat
from sessions_api.logic.policy import Action
from sessions_api.logic.turns import RunRequest
from sessions_api.models.entities import plain
from sessions_api.models.messages import NewChatRunIn
from sessions_api.observability import logger
from sessions_api.settings import Settings

REFRESH_SECONDS = 2.0
REPLAY_PAGE = 500


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def problem_message(exc: errors.ApiError, request_id: str | None = None) -> dict[str, Any]:
    problem = {"title": exc.title, "status": exc.status, "detail": exc.detail, "code": exc.code}
    if exc.errors is not None:
        problem["errors"] = exc.errors
    return {"type": "problem", **({"request_id": request_id} if request_id else {}), "problem": problem}


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
            except ValueError:
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
        if not self.repo.subscribe(subscription, now=int(time.time())):
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


class RunSubscribers:
    """The worker's side: pushes a run's events to its subscribers as they are written."""

    def __init__(
        self, settings: Settings, run: dict[str, Any], worker: str, clock: Callable[[], float] = time.monotonic
    ):
        self.enabled = bool(settings.live_connections_url)
        self.repo = LiveRepo(settings.live_connections_url)
        self.session_id: str = run["session_id"]
        self.request_id: str = run["request_id"]
        self.owner: str = run["owner"]
        self.worker = worker
        self.clock = clock
        self.claimed: dict[str, dict[str, Any]] = {}
        self.new: list[dict[str, Any]] = []  # claimed at the last refresh, and caught up then
        self.sent: list[dict[str, Any]] = []  # every event this worker wrote, for subscribers who come late
        self.refreshed_at: float | None = None

    def push(self, events: list[dict[str, Any]]) -> None:
        """Events just written, numbered: to every subscriber (after a refresh, when one is due)."""
        if not self.enabled:
            return
        self.sent += events
        if self.refreshed_at is None or self.clock() - self.refreshed_at >= REFRESH_SECONDS:
            self.refresh()  # delivers what is new to new subscribers, these events included
            fresh = {id(sub) for sub in self.new}
        else:
            fresh = set()
        for subscription in list(self.claimed.values()):
            if id(subscription) not in fresh:
                self._deliver(subscription, events)

    def close(self) -> None:
        """The run is over for this worker: the events it did not write (the end a cancel wrote) and
        subscribers who came since the last refresh get what they miss."""
        if not self.enabled:
            return
        last = self.sent[-1]["id"] if self.sent else 0
        tail = plain(RunsRepo().events(self.session_id, self.request_id, after=last))
        self.sent += tail
        self.refresh()
        fresh = {id(sub) for sub in self.new}
        for subscription in list(self.claimed.values()):
            if id(subscription) not in fresh:
                self._deliver(subscription, tail)

    def refresh(self) -> None:
        """Read the run's subscribers again: claim and catch up the new ones, forget the gone, and drop
        sharees whose share no longer lets them read."""
        self.refreshed_at = self.clock()
        self.new = []
        found = {sub["connection_id"]: sub for sub in self.repo.subscribers(self.session_id, self.request_id)}
        for connection_id in [known for known in self.claimed if known not in found]:
            del self.claimed[connection_id]  # unsubscribed, or disconnected
        for subscription in self._revoked(list(found.values())):
            self.repo.drop(subscription)
            found.pop(subscription["connection_id"], None)
            self.claimed.pop(subscription["connection_id"], None)
            gone = errors.SessionNotFound(self.session_id)
            self._post(subscription, problem_message(gone, self.request_id))
        for connection_id, subscription in found.items():
            if connection_id in self.claimed:
                continue
            if subscription.get("deliverer") != self.worker and not self.repo.claim(subscription, by=self.worker):
                continue  # the subscribing function replays it (the run had finished)
            self.claimed[connection_id] = subscription
            self.new.append(subscription)
            self._deliver(subscription, [event for event in self.sent if event["id"] > int(subscription["after"])])

    def _revoked(self, subscriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sharee subscriptions whose share was revoked, has lapsed or no longer grants reading."""
        sharees = [sub for sub in subscriptions if sub.get("share")]
        if not sharees:
            return []
        live = {
            (share["PK"], share["SK"])
            for share in self.repo.shares([sub["share"] for sub in sharees])
            if policy.share_is_live(share, timeutil.now_iso())
            and share.get("permission") in policy.granting_permissions(Action.READ)
        }
        return [sub for sub in sharees if (sub["share"]["PK"], sub["share"]["SK"]) not in live]

    def _deliver(self, subscription: dict[str, Any], events: list[dict[str, Any]]) -> None:
        for event in events:
            if not self._post(subscription, {"request_id": self.request_id, **event}):
                return

    def _post(self, subscription: dict[str, Any], message: dict[str, Any]) -> bool:
        try:
            self.repo.post(subscription["connection_id"], encode(message))
        except Gone:
            self.repo.drop(subscription)
            self.claimed.pop(subscription["connection_id"], None)
            return False
        except Exception:  # a subscriber's trouble never stops the run
            logger.warning("Could not post to a connection", extra={"connection_id": subscription["connection_id"]})
        return True
