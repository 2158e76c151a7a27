"""Chat, as runs: start one, wait for it, poll or stream its events, cancel it, list a session's runs.

A chat is accepted in one transaction (`turns.accept`: the user message, the run and the session's turn)
and run by the chat worker (`logic/runner.py`), which the table's stream hands every ready run to. The
synchronous chat is a run awaited up to `SYNC_CHAT_WAIT_SECONDS`; a longer one answers 202 with its poll URL.
Requests of a poll: BatchGetItem (access and the run) + Query (the events after the client's last one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.agents import WRITE_SLIDES, agent_for
from sessions_api.cursor import CursorCodec
from sessions_api.dal import keys, partition, payloads, table
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.dal.sessions_repo import visible
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy, turns
from sessions_api.logic.context import output_allowance
from sessions_api.logic.decks import Decks
from sessions_api.logic.messages import message_out
from sessions_api.logic.policy import Access, Action, Permission
from sessions_api.logic.sessions import Sessions
from sessions_api.models.api import CreateSessionIn
from sessions_api.models.decks import SlideContext
from sessions_api.models.entities import plain
from sessions_api.pricing import price_for
from sessions_api.providers import estimate_tokens
from sessions_api.settings import Settings

TITLE_CHARS = 60
POLL_INTERVAL_SECONDS = 0.25
FINISHED = ("completed", "error", "cancelled")
NO_DECK = {"slides": None, "raw_html": None, "replacement_info": None}


def _bad_context(detail: str, message: str) -> errors.ValidationFailed:
    problem = {"field": "body.slide_context", "message": message, "type": "value_error"}
    return errors.ValidationFailed(detail, errors=[problem])


def title_from(message: str) -> str:
    words = " ".join(message.split())
    return (words[: TITLE_CHARS - 1] + "…" if len(words) > TITLE_CHARS else words) or "New Chat"


@dataclass
class Chat:
    settings: Settings

    # -- start ------------------------------------------------------------------------------------------
    def start(self, caller: Caller, session_id: str | None, request: turns.RunRequest) -> dict[str, Any]:
        """Accept a run: `{request_id, session_id, status: "queued", user_message_id}` (None while it waits)."""
        if request.slide_context is not None and session_id is None:
            raise _bad_context("slide_context revises a session's deck: name the session", "needs a session_id")
        if session_id is None:
            access = self._temporary_session(caller, request)
        else:
            access = authorized.read(caller, session_id, Action.WRITE)
        if request.slide_context is not None:
            if WRITE_SLIDES not in agent_for(request.agent_name or access.session.get("agent_name")).tools:
                raise _bad_context(
                    'slide_context revises a deck, which only an agent that writes slides does: agent_name "slides"',
                    'needs agent_name "slides"',
                )
            Decks().check_context(access.session["session_id"], SlideContext.model_validate(request.slide_context))
        self._precheck_budget(access, request)
        return turns.accept(self.settings, caller, access, request)

    def _temporary_session(self, caller: Caller, request: turns.RunRequest) -> Access:
        """A session opened for this chat, and the owner's access to it (so the chat reads nothing more)."""
        body = CreateSessionIn(
            title=title_from(request.message),
            metadata=request.metadata or {},
            idle_timeout_minutes=self.settings.temporary_session_idle_minutes,
        )
        created = Sessions(self.settings).create(caller, body, temporary=True)
        session = {name: created[name] for name in ("session_id", "created_by", "agent_name", "model_id", "status")}
        return Access(session, Permission.OWNER, None)

    def _precheck_budget(self, access: Access, request: turns.RunRequest) -> None:
        """402 before anything is stored when the budget cannot pay even for this message alone (the worker
        checks again with the whole context)."""
        session = plain(access.session)
        if not any(value is not None for value in (session.get("budget") or {}).values()):
            return
        agent = agent_for(request.agent_name or session.get("agent_name"))
        price = price_for(session.get("model_id") or self.settings.default_model_id, self.settings)
        estimate = estimate_tokens(agent.system_prompt) + estimate_tokens(request.message)
        output_allowance(session, agent, price, estimate)

    # -- read -------------------------------------------------------------------------------------------
    def _load(self, caller: Caller, request_id: str, action: Action) -> tuple[Access, dict[str, Any]]:
        """The caller's access and the run, if the caller may `action` on its session (404 for a stranger, as
        for a missing run): one request."""
        session_id = ids.request_session(request_id)
        if session_id is None:
            raise errors.RunNotFound(request_id)
        session, shares, run = RunsRepo().get_with_access(session_id, request_id, caller)
        session = visible(session, time.time())
        try:
            access = policy.resolve(session_id, session, shares, caller, action, timeutil.now_iso())
        except errors.SessionNotFound:
            raise errors.RunNotFound(request_id) from None
        if run is None:
            raise errors.RunNotFound(request_id)
        return access, run

    def readable_run(self, caller: Caller, request_id: str) -> tuple[Access, dict[str, Any]]:
        """The run and the access that lets the caller read it (a subscription keeps the share, to re-check)."""
        return self._load(caller, request_id, Action.READ)

    def poll(self, caller: Caller, request_id: str, *, after: int, wait: float, remaining_ms: int) -> dict[str, Any]:
        """The run's events after `after`, waiting up to `wait` seconds (inside the function's time) for one."""
        deadline = time.monotonic() + min(wait, max(remaining_ms / 1000 - 2, 0))
        _, run = self._load(caller, request_id, Action.READ)
        repo = RunsRepo()
        while True:
            events = (
                repo.events(run["session_id"], request_id, after=after) if int(run.get("last_event", 0)) > after else []
            )
            if events or run["status"] in FINISHED or time.monotonic() >= deadline:
                return self._view(run, events, after)
            time.sleep(POLL_INTERVAL_SECONDS)
            run = repo.get(run["session_id"], request_id) or run

    def wait(self, accepted: dict[str, Any], *, seconds: float) -> dict[str, Any]:
        """The run as it is when it has finished, or when `seconds` have passed."""
        deadline = time.monotonic() + seconds
        repo = RunsRepo()
        while True:
            run = repo.get(accepted["session_id"], accepted["request_id"])
            if run is None:
                raise errors.RunNotFound(accepted["request_id"])
            if run["status"] in FINISHED or time.monotonic() >= deadline:
                return self._view(run, [], int(run.get("last_event", 0)))
            time.sleep(POLL_INTERVAL_SECONDS)

    def events_until_done(self, accepted: dict[str, Any], *, remaining_ms: int) -> tuple[list[dict[str, Any]], bool]:
        """Every event of the run as it happens, until it ends or the function's time is nearly spent."""
        deadline = time.monotonic() + max(remaining_ms / 1000 - 2, 0)
        repo = RunsRepo()
        found: list[dict[str, Any]] = []
        while True:
            found += repo.events(accepted["session_id"], accepted["request_id"], after=len(found))
            if found and found[-1]["type"] in ("complete", "error"):
                return plain(found), True
            if time.monotonic() >= deadline:
                return plain(found), False
            time.sleep(POLL_INTERVAL_SECONDS)

    def _view(self, run: dict[str, Any], events: list[dict[str, Any]], after: int) -> dict[str, Any]:
        data = plain(run)
        events = plain(events)
        result = None
        if data["status"] == "completed" and data.get("message_id"):
            message = table.get(keys.message_key(data["session_id"], data["message_id"]))
            if message is not None:
                out = message_out(payloads.resolve([message])[0])
                result = {"message_id": out["message_id"], "content": out["content"], "usage": data.get("usage")}
                result |= self._deck_written(data, events) if data.get("deck_version") else NO_DECK
        return {
            "request_id": data["request_id"],
            "session_id": data["session_id"],
            "status": data["status"],
            "events": events,
            "last_message_id": max([after, *(event["id"] for event in events)]),
            "result": result,
            "error": data.get("error"),
            "user_message_id": data.get("user_message_id"),
            "message_id": data.get("message_id"),
            "model_id": data.get("model_id"),
        }

    @staticmethod
    def _deck_written(run: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
        """The deck a completed run wrote, as its `complete` event tells it (read unless the poll has it; gone
        with the run's events after their retention, when GET /slides still has the deck)."""
        last = int(run["last_event"])
        final = next((event for event in events if event["id"] == last), None)
        if final is None:
            final = next(iter(RunsRepo().events(run["session_id"], run["request_id"], after=last - 1, limit=1)), {})
        found = plain(final)
        return {name: found.get(name) for name in ("slides", "raw_html")} | {
            "replacement_info": run.get("replacement_info")
        }

    def runs(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        authorized.read(caller, session_id, Action.READ)
        cursors = CursorCodec.from_settings(self.settings)
        scope = f"runs:{session_id}"
        start = partition.resume_key(
            cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.RUN_PREFIX
        )
        page = RunsRepo().page(session_id, limit=limit, start_key=start)
        return {
            "runs": [
                {
                    name: plain(item).get(name)
                    for name in ("request_id", "status", "created_at", "finished_at", "message_id")
                }
                for item in page.items
            ],
            "next_cursor": cursors.encode(page.next_key, user=caller.user_id, scope=scope) if page.next_key else None,
            "has_more": page.next_key is not None,
        }

    # -- cancel -----------------------------------------------------------------------------------------
    def cancel(self, caller: Caller, request_id: str) -> dict[str, Any]:
        _, run = self._load(caller, request_id, Action.WRITE)
        ended = turns.cancel(self.settings, run)
        return {"request_id": request_id, "status": ended["status"]}
