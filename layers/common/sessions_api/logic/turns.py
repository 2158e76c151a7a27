"""The turn of a session: one chat run at a time, the others waiting in submission order or refused.

A run takes the turn in the transaction that stores its user message (`accept`), so a session's messages
always alternate: a run that has to wait stores its user message only when the turn passes to it. A run
ends (`end`) in one transaction with its reply (complete, stopped or an error), its final event, and the
turn given up or passed to the next waiting run with that run's user message. Every end of a run — the
worker finishing, a cancel, the recovery of a crashed worker — goes through `end`, so no user message is
ever left without a reply and no waiting run is ever stranded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import items, keys, payloads, session_writes, table
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.dal.session_writes import Turn, TurnEnd, Usage, Writer
from sessions_api.dal.sessions_repo import WriteRefused, put
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
from sessions_api.logic.policy import Access, Action, Moved
from sessions_api.models.entities import plain
from sessions_api.settings import Settings

ATTEMPTS = 3


class RunChanged(errors.Conflict):
    """The run moved on while it was being ended (flushed, ended, or taken over by another worker)."""


@dataclass(frozen=True)
class RunRequest:
    message: str
    metadata: dict[str, str] | None
    agent_name: str | None
    if_busy: str = "reject"
    slide_context: dict[str, Any] | None = None  # the slides a revision replaces (models.decks.SlideContext)


def user_message(session_id: str, run: dict[str, Any], *, at: str) -> dict[str, Any]:
    return items.new_message(
        session_id,
        role="user",
        content=run["message"],
        at=at,
        agent_name=run.get("agent_name"),
        metadata=run.get("metadata") or None,
        request_id=run["request_id"],
    )


def ready_until(settings: Settings, now: int) -> int:
    """How long a run nobody has started yet holds the turn, and when the schedule recovers it (its stream
    record lost): two leases, time for the stream to deliver it and a worker to claim it."""
    return now + 2 * settings.run_lease_seconds


def accept(settings: Settings, caller: Caller, access: Access, request: RunRequest) -> dict[str, Any]:
    """The run, queued: holding the turn with its user message stored, or waiting for it (`if_busy`)."""
    session_id = access.session["session_id"]
    request_id = ids.new_request_id(session_id)
    owner = access.session["created_by"]
    inputs: dict[str, Any] | None = None
    for _ in range(ATTEMPTS):
        moment = timeutil.now()
        now, at = timeutil.epoch_seconds(moment), timeutil.iso(moment)
        problem = policy.closed(session_id, access.session, session_writes.OPEN_FOR_MESSAGES)
        if problem is not None:
            raise problem
        holder = access.session.get("active_run")
        held = holder is not None and int(access.session.get("active_run_until", 0)) >= now
        if holder is not None and not held:
            # The turn's lease lapsed: its run's worker is gone, or it is late. A gone one's run is ended
            # first (its user message gets its error reply before this one is stored); a late one is busy.
            stale = RunsRepo().get(session_id, holder)
            if stale is not None and stale.get("phase") in ("ready", "running"):
                if int(stale.get("lease_until") or stale.get("GSI3SK") or 0) >= now:
                    held = True
                else:
                    with contextlib.suppress(RunChanged):
                        end_abandoned(settings, stale, worker=None)
                    access = authorized.read(caller, session_id, Action.WRITE)
                    continue
        if held and request.if_busy == "reject":
            raise policy.busy(session_id)
        if inputs is None:  # once, for a run that will be stored (an unused object goes with the session)
            inputs = payloads.run_input(
                owner, session_id, request_id, message=request.message, slide_context=request.slide_context
            )
        run = {
            "session_id": session_id,
            "status": "queued",
            "created_at": at,
            "created_by": caller.user_id,
            "owner": owner,
            **inputs,
            "metadata": request.metadata or None,
            "agent_name": request.agent_name,
            "if_busy": request.if_busy,
            "last_event": 0,
        }
        try:
            if not held:
                message = user_message(session_id, {**run, "request_id": request_id, "message": request.message}, at=at)
                ready = {
                    **run,
                    "phase": "ready",
                    "user_message_id": message["message_id"],
                    "GSI3PK": keys.due_pk(session_id, settings.due_shards),
                    "GSI3SK": ready_until(settings, now),
                }
                change = session_writes.append_messages(
                    session_id,
                    MessagesRepo.offload([message], owner),
                    items.messages_added(session_id, caller.user_id, at, [message]),
                    moment=moment,
                    take_turn=Turn(request_id, now, ready_until(settings, now)),
                    puts=[items.run(session_id, request_id, _stored(ready))],
                )
                authorized.write(caller, Action.WRITE, change, access=access)
                return _accepted(session_id, request_id, message["message_id"])
            assert holder is not None
            interrupt = request.if_busy == "interrupt"
            waiting = items.run(session_id, request_id, _stored({**run, "phase": "waiting"}))
            queued = items.run_queue_entry(session_id, request_id, first=interrupt)
            change = session_writes.enqueue_run(session_id, [waiting, queued], moment=moment, holder=holder, now=now)
            authorized.write(caller, Action.WRITE, change, access=access)
        except (Moved, errors.SessionBusy) as refused:
            access = authorized.read(caller, session_id, Action.WRITE)  # the turn changed hands: plan again
            if access.session.get("active_run") == request_id:
                # Our own write landed and only its answer was lost (a retried request finds its own turn).
                mine = RunsRepo().get(session_id, request_id) or {}
                return _accepted(session_id, request_id, mine.get("user_message_id"))
            if isinstance(refused, errors.SessionBusy) and request.if_busy == "reject":
                raise
            continue
        if interrupt:
            current = RunsRepo().get(session_id, holder)
            if current is not None:
                with contextlib.suppress(errors.InvalidStateTransition):  # it ended meanwhile, passing the turn on
                    cancel(settings, current)
        return _accepted(session_id, request_id, None)
    raise errors.Conflict(f"Session {session_id} keeps changing; retry the chat")


def cancel(settings: Settings, run: dict[str, Any]) -> dict[str, Any]:
    """Stop the run now: the reply so far is kept as a stopped reply and the turn passes on at once (the
    worker notices at its next chunk and stops). A finished run: 409."""
    session_id, request_id = run["session_id"], run["request_id"]
    for _ in range(ATTEMPTS):
        if run.get("phase") == "done":
            raise errors.InvalidStateTransition(
                f"Run {request_id} is {run['status']}; only a queued or running run can be cancelled",
                extra={"current_status": run["status"], "allowed_actions": []},
            )
        reply = None
        if run.get("phase") != "waiting":
            text = "".join(
                event.get("delta", "")
                for event in RunsRepo().events(session_id, request_id, after=0, limit=100_000)
                if event.get("type") == "assistant"
            )
            reply = items.new_message(
                session_id,
                role="assistant",
                content=text,
                at=timeutil.now_iso(),
                agent_name=run.get("agent_name"),
                request_id=request_id,
                stopped=True,
            )
        ending = Ending("cancelled", reply, {"type": "complete", "stopped": True, "usage": None})
        try:
            return end(settings, run, ending, worker=None)
        except RunChanged:
            found = RunsRepo().get(session_id, request_id)
            if found is None:
                raise errors.RunNotFound(request_id) from None
            run = found
    raise errors.Conflict(f"Run {request_id} keeps changing; retry the cancel")


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _accepted(session_id: str, request_id: str, user_message_id: str | None) -> dict[str, Any]:
    return {"request_id": request_id, "session_id": session_id, "status": "queued", "user_message_id": user_message_id}


@dataclass(frozen=True)
class Ending:
    """How a run ends: its status, its reply (None: it never had the turn), and its last event."""

    status: str  # completed, cancelled, error
    reply: dict[str, Any] | None
    event: dict[str, Any]
    usage: Usage | None = None
    fields: dict[str, Any] | None = None  # more of the run's own record (error, result, usage)


def end(
    settings: Settings,
    run: dict[str, Any],
    ending: Ending,
    *,
    worker: str | None,
) -> dict[str, Any]:
    """End `run` as `ending` says, passing the turn on; returns the run's final record.

    Written for the session's owner, whoever ends it: the caller who cancels was authorized when the run was
    read. `worker`: the worker that must still hold the run (None: whoever does, as a cancel). Raises
    RunChanged when the run moved meanwhile (a worker's flush or end, a take-over): read it again.
    """
    session_id, request_id = run["session_id"], run["request_id"]
    owner = run["owner"]
    repo = RunsRepo()
    last_event = int(run.get("last_event", 0))
    for _ in range(ATTEMPTS):
        moment = timeutil.now()
        now, at = timeutil.epoch_seconds(moment), timeutil.iso(moment)
        number = last_event + 1
        ttl = now + settings.run_events_retention_hours * 3600
        final = {**ending.event, "at": at}
        if ending.reply is not None:
            final["message_id"] = ending.reply["message_id"]
        record = {
            "status": ending.status,
            "finished_at": at,
            "last_event": number,
            **({"message_id": ending.reply["message_id"]} if ending.reply else {}),
            **(ending.fields or {}),
        }
        event_item = items.run_event(session_id, request_id, number, final, ttl=ttl)
        waiting = run.get("phase") == "waiting"
        phases = ("waiting",) if waiting else ("ready", "running") if worker is None else ("running",)
        finish = repo.finish(
            session_id, request_id, expected_phases=phases, worker=worker, last_event=last_event, fields=record
        )
        if waiting:
            queue_key = keys.run_queue_key(session_id, request_id, first=run.get("if_busy") == "interrupt")
            change = session_writes.dequeue_run(session_id, [event_item], [queue_key], [finish])
        else:
            assert ending.reply is not None, "a run that had the turn always ends with a reply"
            messages = [ending.reply]
            operations = [finish]
            successor = repo.next_waiting(session_id)
            successor_turn = None
            if successor is not None:
                next_message = user_message(session_id, payloads.with_run_input(successor), at=at)
                messages.append(next_message)
                operations.append(
                    repo.promote(
                        session_id,
                        successor["request_id"],
                        user_message_id=next_message["message_id"],
                        due_pk=keys.due_pk(session_id, settings.due_shards),
                        ready_until=ready_until(settings, now),
                    )
                )
                operations.append({"Delete": {"Key": successor["queue_key"]}})
                successor_turn = Turn(successor["request_id"], now, ready_until(settings, now))
            change = session_writes.append_messages(
                session_id,
                MessagesRepo.offload(messages, owner),
                items.messages_added(session_id, run["created_by"], at, messages),
                moment=moment,
                open_only=False,  # the turn began while the session was open; its reply completes it
                end_turn=TurnEnd(request_id, 0 if successor is None else None, successor_turn),
                usage=ending.usage,
                puts=[event_item],
                operations=operations,
            )
            if run["created_by"] != owner:  # a sharee's run: its reply's history entry names them
                change = session_writes.signed(change, run["created_by"])
        try:
            session_writes.commit(change, Writer(owner))
        except WriteRefused as refused:
            if not refused.session_refused:
                raise RunChanged(f"Run {request_id} changed while it was being ended") from refused
            problem = policy.refusal(session_id, refused, change.expects)
            if isinstance(problem, Moved):
                found = repo.get(session_id, request_id) or {}
                if found.get("phase") == "done" or (worker is not None and found.get("worker") != worker):
                    raise RunChanged(f"Run {request_id} ended elsewhere") from refused  # the turn went with it
                continue  # a run was enqueued meanwhile: hand the turn to it
            if not isinstance(problem, errors.SessionExpired | errors.SessionNotFound):
                raise problem from refused
            # The session expired or was deleted under the run: no reply can be stored, the run still ends.
            try:
                repo.write([finish, put(event_item)])
            except table.TransactionCancelled as cancelled:
                raise RunChanged(f"Run {request_id} changed while it was being ended") from cancelled
        return plain({**run, **record, "phase": "done"})
    raise errors.Conflict(f"Session {session_id} keeps changing; retry")


def end_abandoned(settings: Settings, run: dict[str, Any], *, worker: str | None) -> dict[str, Any]:
    """End a run its worker left (crashed, timed out, or never came) as `error`, with an error reply."""
    detail = "The worker running this chat stopped"
    reply = items.new_message(
        run["session_id"],
        role="assistant",
        content="The model could not answer (worker_lost).",
        at=timeutil.now_iso(),
        agent_name=run.get("agent_name"),
        token_count=0,
        is_error=True,
        request_id=run["request_id"],
    )
    error = {"code": "worker_lost", "detail": detail, "retryable": True}
    return end(settings, run, Ending("error", reply, {"type": "error", **error}, None, {"error": error}), worker=worker)
