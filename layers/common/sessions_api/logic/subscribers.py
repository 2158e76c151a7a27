"""The chat worker's side of live streaming: a run's subscribers, and the events pushed to them.

The worker caches a run's subscribers and reads them again every `REFRESH_SECONDS` (a Query, and the shares
of its sharee subscribers, so a revoked share stops the events within that time), never per event: N
subscribers cost it N posts per coalesced event. A subscription is delivered by one party only, decided by
`LiveRepo.claim`: the live function when the run had already finished (`logic/live.py`), else this worker,
which keeps the events it wrote in memory for subscribers who come late.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.dal.live_repo import Gone, LiveRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.logic import policy
from sessions_api.logic.policy import Action
from sessions_api.models.entities import plain
from sessions_api.observability import logger
from sessions_api.settings import Settings

REFRESH_SECONDS = 2.0


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def problem_message(exc: errors.ApiError, request_id: str | None = None) -> dict[str, Any]:
    problem = {"title": exc.title, "status": exc.status, "detail": exc.detail, "code": exc.code}
    if exc.errors is not None:
        problem["errors"] = exc.errors
    return {"type": "problem", **({"request_id": request_id} if request_id else {}), "problem": problem}


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
        """Events just written, numbered: to every subscriber (after a refresh, when one is due). Whatever
        goes wrong here is logged: a subscriber's trouble never fails the run."""
        if not self.enabled:
            return
        self.sent += events
        try:
            self._push(events)
        except Exception:
            logger.exception("Could not push to the run's subscribers")

    def _push(self, events: list[dict[str, Any]]) -> None:
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
        try:
            self._close()
        except Exception:
            logger.exception("Could not push the run's last events to its subscribers")

    def _close(self) -> None:
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
        except Exception:  # throttled or slow: skip it for this batch rather than wait on it for every event
            logger.warning("Could not post to a connection", extra={"connection_id": subscription["connection_id"]})
            return False
        return True
