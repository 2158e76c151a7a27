"""The chat worker: runs a chat run to its end, storing what the model says as the run's numbered events.

A run reaches a worker when it is ready (it holds its session's turn, its user message stored). The worker
claims it (one conditional write, so a duplicate delivery does nothing), reads the context — after the
turn is held, so turns never interleave — streams from the model and writes the deltas coalesced by time
and size (a long reply writes a bounded number of items, not one per token). Each write also renews the
run's lease and fails once the run is not this worker's any more (cancelled, or taken over after the lease
lapsed): the worker then stops at once. A worker that crashes or times out leaves a running run whose
lease lapses; the retry of its stream record, or else the schedule, takes it over and ends it `error`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.agents import WRITE_SLIDES, agent_for, tools_of
from sessions_api.dal import items, payloads, session_writes, table
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.dal.session_writes import Usage
from sessions_api.dal.sessions_repo import SessionsRepo, put, visible
from sessions_api.identity import Caller
from sessions_api.logic import decks, turns
from sessions_api.logic.context import (
    CONTEXT_MESSAGES,
    build_context,
    output_allowance,
    to_turns,
)
from sessions_api.logic.decks import DeckConflict, Decks, RunDeck, StoredDeck
from sessions_api.logic.subscribers import RunSubscribers
from sessions_api.models.decks import SlideContext
from sessions_api.models.entities import plain
from sessions_api.observability import logger
from sessions_api.pricing import price_for
from sessions_api.providers import (
    ModelFailure,
    ModelProvider,
    ModelRequest,
    ModelStream,
    ToolCall,
    ToolResult,
    Turn,
    estimate_tokens,
)
from sessions_api.settings import Settings

# Deltas are written at most this often, or sooner once this much text is waiting.
FLUSH_SECONDS = 0.25
FLUSH_BYTES = 4096
# The worker ends its run this long before its own timeout, rather than be killed mid-write.
STOP_MARGIN_MS = 10_000
# A run asks the model at most this often: a deck, the deck again after a refusal, what it made, and one spare.
MAX_MODEL_CALLS = 4
# DynamoDB nests an item's maps and lists 32 deep at most; an event and its envelope take a few levels.
MAX_EVENT_DEPTH = 24
# A deck shown in an event only up to this size (an item holds 400 KB); a larger one is read at GET /slides.
EVENT_DECK_BYTES = 128 * 1024


def new_worker_id() -> str:
    return uuid.uuid4().hex


def run(
    settings: Settings, provider: ModelProvider, session_id: str, request_id: str, *, remaining_ms: Callable[[], int]
) -> None:
    """Run a ready run; a run already started elsewhere is left alone, or recovered if its worker died."""
    worker = new_worker_id()
    moment = timeutil.now()
    lease = timeutil.epoch_seconds(moment) + settings.run_lease_seconds
    claimed = RunsRepo().claim(session_id, request_id, worker=worker, lease_until=lease, at=timeutil.iso(moment))
    if claimed is None:
        recover(settings, session_id, request_id, remaining_ms=remaining_ms)
        return
    Execution(settings, claimed, worker, remaining_ms).go(provider)


class Recovery(enum.Enum):
    ENDED = "ended"  # the run is (now) done
    REARMED = "rearmed"  # its worker still renews the lease: due again when the lease would lapse
    LEFT = "left"  # held longer than the caller could wait (or waiting for the turn): someone later sees to it


def recover(
    settings: Settings, session_id: str, request_id: str, *, remaining_ms: Callable[[], int], rearm: bool = False
) -> Recovery:
    """End a run whose worker stopped renewing its lease (crashed, timed out), or that no worker ever started,
    as `error` with an error reply. A lease that has not lapsed yet is waited out while time allows, or, for
    the schedule (`rearm`), made the run's due time: a worker's renewals never move the due index."""
    repo, worker = RunsRepo(), new_worker_id()
    while True:
        found = repo.get(session_id, request_id)
        if found is None or found.get("phase") in ("done", "waiting"):
            return Recovery.ENDED if found is not None and found.get("phase") == "done" else Recovery.LEFT
        now = timeutil.epoch_seconds(timeutil.now())
        lease = now + settings.run_lease_seconds
        if found["phase"] == "ready":
            adopted = repo.claim(session_id, request_id, worker=worker, lease_until=lease, at=timeutil.now_iso())
        else:
            lapses_in_ms = (int(found["lease_until"]) - now + 1) * 1000
            if lapses_in_ms > 0:
                if rearm:
                    return Recovery.REARMED if repo.rearm(session_id, request_id, now=now) else Recovery.LEFT
                if lapses_in_ms > remaining_ms() - STOP_MARGIN_MS:
                    return Recovery.LEFT
                time.sleep(lapses_in_ms / 1000)
                continue
            adopted = repo.take_over(session_id, request_id, worker=worker, now=now, lease_until=lease)
        if adopted is None:
            continue  # someone else moved it meanwhile: look again
        logger.warning("Recovering a run its worker left", extra={"request_id": request_id})
        try:
            turns.end_abandoned(settings, adopted, worker=worker)
        except turns.RunChanged:
            continue  # ended elsewhere meanwhile
        return Recovery.ENDED


class Execution:
    """One run, from the claim to its end, by one worker."""

    def __init__(self, settings: Settings, run: dict[str, Any], worker: str, remaining_ms: Callable[[], int]) -> None:
        self.settings = settings
        self.repo = RunsRepo()
        self.worker = worker
        self.run = payloads.with_run_input(run)
        self.session_id: str = run["session_id"]
        self.request_id: str = run["request_id"]
        self.remaining_ms = remaining_ms
        self.last_event = int(run.get("last_event", 0))
        self.text: list[str] = []  # the reply so far (a run is claimed before it has written anything)
        self.reply_id = ids.new_id("msg")
        self.agent_name: str | None = run.get("agent_name")  # the session's, once the run has read it
        self.model_id: str | None = None
        self.turn_renewed = time.monotonic()
        self.renewing_turn = False
        self.input_tokens = self.output_tokens = 0  # what the model calls so far cost, billed however the run ends
        self.price = price_for(settings.default_model_id, settings)
        self.lease_renewed = time.monotonic()
        self.slides: SlideWork | None = None  # the run's `write_slides` tool, when its agent has it
        self.live = RunSubscribers(settings, run, worker)
        self.numbered: list[dict[str, Any]] = []  # the events of the last `event_operations`, as stored

    # -- the run ----------------------------------------------------------------------------------------
    def go(self, provider: ModelProvider) -> None:
        try:
            self._go(provider)
        finally:
            self.live.close()

    def _go(self, provider: ModelProvider) -> None:
        started = time.perf_counter()
        session = visible(next(iter(SessionsRepo().get_many([self.session_id])), None), time.time())
        if session is None:
            self.fail("session_gone", "The session was deleted")
            return
        stored = plain(session)
        agent = agent_for(self.run.get("agent_name") or stored.get("agent_name"))
        self.agent_name = agent.name
        model_id = provider.model_for(stored.get("model_id") or self.settings.default_model_id)
        self.model_id = model_id
        price = self.price = price_for(model_id, self.settings)
        message = self.run["message"]
        history = [
            item
            for item in MessagesRepo().newest(self.session_id, limit=CONTEXT_MESSAGES + 1)
            if item["message_id"] != self.run.get("user_message_id")
        ]
        tools = tools_of(agent)
        if tools:
            self.slides = SlideWork(self, stored["title"])
        system, chosen = build_context(agent, history, message)
        context = to_turns(
            self.slides.system(system) if self.slides else system,
            payloads.resolve(chosen),
            self.slides.prompt(message) if self.slides else message,
        )
        try:
            allowance = output_allowance(stored, agent, price, context.input_tokens)
        except errors.InsufficientBalance as refused:
            self.fail("insufficient_balance", refused.detail)
            return
        request = ModelRequest(
            model_id=model_id,
            system=context.system,
            turns=context.turns,
            max_output_tokens=allowance,
            temperature=agent.temperature,
            tools=tools,
        )
        answered_by = model_id
        for _ in range(MAX_MODEL_CALLS):
            try:
                stream = provider.converse_stream(request)
                if not self._relay(stream):
                    return
            except ModelFailure as failure:
                # The provider's own message can name accounts and roles: it goes to the log, not the conversation.
                logger.warning("Model failed", extra={"code": failure.code, "reason": failure.reason})
                self.fail(failure.code, "The model could not answer", retryable=failure.retryable)
                return
            reply = stream.reply
            assert reply is not None
            self.input_tokens += reply.input_tokens
            self.output_tokens += reply.output_tokens
            input_tokens, output_tokens = self.input_tokens, self.output_tokens
            answered_by = reply.model_id
            if not reply.tool_calls or self.slides is None:
                break
            results = self.slides.answer(reply.tool_calls)
            if results is None:
                return  # the run ended (a second refused deck, or it stopped being this worker's)
            answered = [Turn("assistant", reply.text, reply.tool_calls), Turn("user", "", tool_results=tuple(results))]
            spent = {
                **stored,
                "billed_tokens": int(stored.get("billed_tokens", 0)) + input_tokens + output_tokens,
                "cost_usd": float(stored.get("cost_usd", 0)) + price.cost(input_tokens, output_tokens),
            }
            asked = context.input_tokens + output_tokens + sum(estimate_tokens(json.dumps(r.output)) for r in results)
            try:
                allowance = output_allowance(spent, agent, price, asked)
            except errors.InsufficientBalance:
                break  # the budget is spent: the run ends with what was said and done
            request = dataclasses.replace(request, turns=[*request.turns, *answered], max_output_tokens=allowance)
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        usage, usage_out = self._usage()
        content = "".join(self.text) or (self.slides.said() if self.slides else "")
        record = {"usage": usage_out, "model_id": answered_by}
        complete = {"type": "complete", "usage": usage_out}
        if self.slides is not None:
            record |= self.slides.record_fields()
            complete |= self.slides.written_fields()
        self._end(
            turns.Ending(
                "completed",
                self._reply(content, model_id=answered_by, token_count=self.output_tokens, elapsed_ms=elapsed_ms),
                complete,
                usage,
                record,
            )
        )

    def _relay(self, stream: ModelStream) -> bool:
        """Store the stream's deltas as events; False when the run stopped being this worker's (or ran out
        of time, and was ended), and nothing more is to be written."""
        pending: list[str] = []
        flushed = time.monotonic()
        for delta in stream:
            if delta:  # an empty one: the model is writing a tool's input, no text, but it is alive
                pending.append(delta)
                self.text.append(delta)
            waiting = sum(len(part.encode("utf-8")) for part in pending)
            flush_due = pending and (time.monotonic() - flushed >= FLUSH_SECONDS or waiting >= FLUSH_BYTES)
            if flush_due or time.monotonic() - self.lease_renewed >= self.settings.run_lease_seconds / 3:
                if not (self._flush(pending) if pending else self.emit([])):
                    stream.close()
                    return False
                pending, flushed = [], time.monotonic()
            if self.remaining_ms() < STOP_MARGIN_MS:
                stream.close()
                if self._flush(pending):
                    self.fail("timeout", "The model did not finish within the worker's time")
                return False
        return self._flush(pending)

    def _flush(self, pending: list[str]) -> bool:
        """The pending deltas as one event."""
        if not pending:
            return True
        return self.emit([{"type": "assistant", "delta": "".join(pending), "message_id": self.reply_id}])

    def emit(self, events: list[dict[str, Any]]) -> bool:
        """The events in one transaction with the run's progress; False when the run is not this worker's any
        more (cancelled, or taken over), which writes nothing more."""
        try:
            self.repo.write(self.event_operations(events))
        except table.TransactionCancelled:
            return False
        self.emitted(events)
        return True

    def event_operations(self, events: list[dict[str, Any]], *, renew_turn: bool = True) -> list[dict[str, Any]]:
        """The operations that store `events`, numbered on: their items, the run's count and lease (only while
        this worker runs it), and now and then the turn's lease (not `renew_turn`: a transaction that writes
        the session item itself, which one transaction may update only once)."""
        now = timeutil.epoch_seconds(timeutil.now())
        lease = now + self.settings.run_lease_seconds
        ttl = now + self.settings.run_events_retention_hours * 3600
        at = timeutil.now_iso()
        self.numbered = [event | {"at": at, "id": self.last_event + number} for number, event in enumerate(events, 1)]
        operations = [
            put(items.run_event(self.session_id, self.request_id, event["id"], event, ttl=ttl))
            for event in self.numbered
        ]
        operations.append(
            self.repo.progress(
                self.session_id,
                self.request_id,
                worker=self.worker,
                last_event=self.last_event,
                added=len(events),
                lease_until=lease,
            )
        )
        self.renewing_turn = renew_turn and time.monotonic() - self.turn_renewed >= self.settings.run_lease_seconds / 3
        self.lease_renewed = time.monotonic()
        if self.renewing_turn:
            operations.append(session_writes.renew_turn(self.session_id, self.request_id, lease))
        return operations

    def emitted(self, events: list[dict[str, Any]]) -> None:
        """The last `event_operations(events)` committed: counted, and pushed to the run's subscribers."""
        self.last_event += len(events)
        self.live.push(plain(self.numbered))
        if self.renewing_turn:
            self.turn_renewed = time.monotonic()

    # -- endings ------------------------------------------------------------------------------------------
    def fail(self, code: str, detail: str, *, retryable: bool = False) -> None:
        """End the run `error` with an error reply (the session's turn completes, and passes on); the model
        calls made so far are billed, and a deck written before is on the run's record."""
        content = f"The model could not answer ({code})."
        error = {"code": code, "detail": detail, "retryable": retryable}
        record: dict[str, Any] = {"error": error}
        usage = None
        if self.input_tokens or self.output_tokens:
            usage, record["usage"] = self._usage()
        if self.slides is not None:
            record |= self.slides.record_fields()
        self._end(
            turns.Ending(
                "error",
                self._reply(content, model_id=self.model_id, token_count=0, elapsed_ms=None, is_error=True),
                {"type": "error", **error},
                usage,
                record,
            )
        )

    def _usage(self) -> tuple[Usage, dict[str, Any]]:
        cost = self.price.cost(self.input_tokens, self.output_tokens)
        tokens = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        return Usage(self.input_tokens, self.output_tokens, cost), tokens | {
            "total_tokens": self.input_tokens + self.output_tokens,
            "cost_usd": cost,
        }

    def _reply(
        self, content: str, *, model_id: str | None, token_count: int, elapsed_ms: int | None, is_error: bool = False
    ) -> dict[str, Any]:
        return items.new_message(
            self.session_id,
            role="assistant",
            content=content,
            at=timeutil.now_iso(),
            model_id=model_id,
            agent_name=self.agent_name,
            token_count=token_count,
            response_time_ms=elapsed_ms,
            is_error=is_error,
            request_id=self.request_id,
            message_id=self.reply_id,
        )

    def _end(self, ending: turns.Ending) -> None:
        try:
            turns.end(self.settings, {**self.run, "last_event": self.last_event}, ending, worker=self.worker)
        except turns.RunChanged:
            logger.info("Run ended elsewhere", extra={"request_id": self.request_id})  # a cancel got there first


class SlideWork:
    """A run's `write_slides` tool: the deck the run starts from, the model's calls planned and stored through
    `logic/decks.py` (each with its events, in one transaction), and what the run's end says about the deck.

    A refused call (an invalid deck, or one that would overwrite a change made since the run read the deck)
    is answered to the model, which may try once more; a second refusal ends the run `error`.
    """

    def __init__(self, execution: Execution, title: str) -> None:
        self.execution = execution
        self.title = title
        self.decks = Decks()
        self.base: StoredDeck = self.decks.read(execution.session_id)  # the author's access is checked at the write
        found = execution.run.get("slide_context")
        self.context = SlideContext.model_validate(plain(found)) if found else None
        self.written: RunDeck | None = None
        self.refused = 0

    # -- what the model sees ------------------------------------------------------------------------------
    def system(self, prompt: str) -> str:
        if not self.base.version:
            return f"{prompt}\n\nThe session has no deck yet."
        lines = "\n".join(decks.outline(self.base.deck))
        return f"{prompt}\n\nThe session's deck now (position, [slide_id], first words):\n{lines}"

    def prompt(self, message: str) -> str:
        """The user's message, and the slides to revise as the client showed them."""
        if self.context is None:
            return message
        slides = self.base.deck["slides"]
        shown = "\n".join(
            f'<slide index="{index}" id="{slides[index]["slide_id"] if index < len(slides) else f"slide-{index + 1}"}">'
            f"\n{html}\n</slide>"
            for index, html in zip(self.context.indices, self.context.slide_htmls, strict=True)
        )
        first, last = self.context.indices[0], self.context.indices[-1]
        return (
            f"{message}\n\n<slide_context>\nRevise only slides {first} to {last} (0-based) of the "
            f"{len(slides)}-slide deck: call write_slides with their replacements only, in order. They are now:"
            f"\n{shown}\n</slide_context>"
        )

    # -- the tool -------------------------------------------------------------------------------------------
    def answer(self, calls: tuple[ToolCall, ...]) -> list[ToolResult] | None:
        """Each call's result for the model; None once the run has ended (a second refusal, a lost run)."""
        execution = self.execution
        results = []
        for call in calls:
            if not execution.emit([{"type": "tool_call", "tool": call.name, "input": _shown(call.input)}]):
                return None
            output = self._write(call) if call.name == WRITE_SLIDES else _refusal("unknown_tool", "No such tool")
            if output is None:
                return None
            refused = output["status"] != "written"
            if refused:
                if not execution.emit([{"type": "tool_result", "tool": call.name, "output": output}]):
                    return None
                self.refused += 1
                if self.refused > 1:
                    execution.fail(output["code"], output["error"])
                    return None
            results.append(ToolResult(call.call_id, output, is_error=refused))
        return results

    def _write(self, call: ToolCall) -> dict[str, Any] | None:
        """Plan and store the deck the call proposes, with its `tool_result` and `slides` events; the output
        the model is told, or None when the run is not this worker's any more."""
        execution = self.execution
        caller = Caller(execution.run["created_by"])
        base = self.base
        for attempt in range(2):
            try:
                planned = decks.plan_for_run(base, call.input, self.context)
            except errors.ValidationFailed as invalid:
                return _refusal("invalid_deck", invalid.detail, invalid.errors)
            except errors.PayloadTooLarge as oversize:
                return _refusal("invalid_deck", oversize.detail)
            output = {
                "status": "written",
                "version": planned.stored.version,
                "slide_count": len(planned.stored.deck["slides"]),
                "titles": decks.titles(planned.stored.deck),
            }
            if planned.replacement_info:
                output["replacement_info"] = planned.replacement_info
            events = [
                {"type": "tool_result", "tool": call.name, "output": output},
                {"type": "slides", "version": planned.stored.version, **self._deck_fields(planned, "slide_deck")},
            ]
            try:
                self.decks.store_for_run(
                    caller,
                    execution.session_id,
                    planned,
                    request_id=execution.request_id,
                    alongside=execution.event_operations(events, renew_turn=False),
                )
            except DeckConflict as conflict:
                if (
                    attempt
                    or self.context is None
                    or not decks.same_slides(base.deck, conflict.current.deck, self.context)
                ):
                    self.base = conflict.current  # a second try is planned on the deck as it is now
                    return _refusal(
                        "deck_conflict",
                        f"The deck was changed (now version {conflict.current.version}) after this run read it; "
                        "nothing was written",
                        outline=decks.outline(conflict.current.deck),
                    )
                base = conflict.current  # the slides it revises are untouched: revise them in the deck as it is now
                continue
            except errors.Conflict as refused:
                # The session closed, or the run is not this worker's any more (then the end is refused too).
                execution.fail("deck_not_written", refused.detail)
                return None
            except (errors.SessionNotFound, errors.SessionNotAccessible) as gone:
                execution.fail("session_not_accessible", gone.detail)
                return None
            execution.emitted(events)
            self.base, self.written = planned.stored, planned
            return output
        raise AssertionError("unreachable")

    # -- what the run's end says ----------------------------------------------------------------------------
    def said(self) -> str:
        """A reply for a run whose model only called the tool."""
        if self.written is None:
            return "No deck was written."
        count = len(self.written.stored.deck["slides"])
        return (
            f"Wrote {count} slide{'s' if count != 1 else ''}: {'; '.join(decks.titles(self.written.stored.deck)[:12])}."
        )

    def written_fields(self) -> dict[str, Any]:
        """The `complete` event's deck: `slides`, `raw_html`, `replacement_info` (none when nothing was written)."""
        if self.written is None:
            return {}
        fields = self._deck_fields(self.written, "slides")
        if fields["slides"] is not None:
            fields["raw_html"] = decks.raw_html(self.written.stored.deck, title=self.title)
        return {**fields, "replacement_info": self.written.replacement_info}

    def record_fields(self) -> dict[str, Any]:
        """What the run's own record keeps of its deck."""
        if self.written is None:
            return {}
        return {"deck_version": self.written.stored.version, "replacement_info": self.written.replacement_info}

    def _deck_fields(self, planned: RunDeck, name: str) -> dict[str, Any]:
        shown = decks.with_count(planned.stored)
        if len(json.dumps(shown, ensure_ascii=False).encode()) > EVENT_DECK_BYTES:
            return {name: None, "deck_url": f"/api/v1/sessions/{self.execution.session_id}/slides"}
        return {name: shown}


def _refusal(code: str, detail: str, problems: Any = None, **more: Any) -> dict[str, Any]:
    output: dict[str, Any] = {"status": "conflict" if code == "deck_conflict" else "refused", "code": code}
    output["error"] = detail
    if problems:
        output["errors"] = problems[:20]
    return output | more


def _shown(value: Any) -> Any:
    """A tool call's input as its event shows it: whole, unless it would not fit an event (or nests deeper than
    an item may), then as JSON text or a note."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text.encode()) <= EVENT_DECK_BYTES:
        return value if _depth(value) <= MAX_EVENT_DEPTH else text
    return {
        "omitted": "too large for an event",
        "slide_count": len(value.get("slides") or []) if isinstance(value, dict) else None,
    }


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0
