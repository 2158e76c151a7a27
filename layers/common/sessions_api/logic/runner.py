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

import time
import uuid
from collections.abc import Callable
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.agents import agent_for
from sessions_api.dal import items, payloads, session_writes, table
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.runs_repo import RunsRepo
from sessions_api.dal.session_writes import Usage
from sessions_api.dal.sessions_repo import SessionsRepo, put, visible
from sessions_api.logic import turns
from sessions_api.logic.context import CONTEXT_MESSAGES, build_context, output_allowance, to_turns
from sessions_api.models.entities import plain
from sessions_api.observability import logger
from sessions_api.pricing import price_for
from sessions_api.providers import ModelFailure, ModelProvider, ModelRequest, ModelStream
from sessions_api.settings import Settings

# Deltas are written at most this often, or sooner once this much text is waiting.
FLUSH_SECONDS = 0.25
FLUSH_BYTES = 4096
# The worker ends its run this long before its own timeout, rather than be killed mid-write.
STOP_MARGIN_MS = 10_000


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


def recover(settings: Settings, session_id: str, request_id: str, *, remaining_ms: Callable[[], int]) -> bool:
    """End a run whose worker stopped renewing its lease (crashed, timed out), or that no worker ever started,
    as `error` with an error reply. Waits out a lease that has not lapsed yet while time allows; True when
    the run is (now) done."""
    repo, worker = RunsRepo(), new_worker_id()
    while True:
        found = repo.get(session_id, request_id)
        if found is None or found.get("phase") in ("done", "waiting"):
            return found is not None and found.get("phase") == "done"
        now = timeutil.epoch_seconds(timeutil.now())
        lease = now + settings.run_lease_seconds
        if found["phase"] == "ready":
            adopted = repo.claim(session_id, request_id, worker=worker, lease_until=lease, at=timeutil.now_iso())
        else:
            lapses_in_ms = (int(found["lease_until"]) - now + 1) * 1000
            if lapses_in_ms > 0:
                if lapses_in_ms > remaining_ms() - STOP_MARGIN_MS:
                    return False  # held longer than this invocation has: the schedule will see to it
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
        return True


class Execution:
    """One run, from the claim to its end, by one worker."""

    def __init__(self, settings: Settings, run: dict[str, Any], worker: str, remaining_ms: Callable[[], int]) -> None:
        self.settings = settings
        self.repo = RunsRepo()
        self.worker = worker
        self.run = run
        self.session_id: str = run["session_id"]
        self.request_id: str = run["request_id"]
        self.remaining_ms = remaining_ms
        self.last_event = int(run.get("last_event", 0))
        self.text: list[str] = []  # the reply so far (a run is claimed before it has written anything)
        self.reply_id = ids.new_id("msg")
        self.agent_name: str | None = run.get("agent_name")  # the session's, once the run has read it
        self.model_id: str | None = None
        self.turn_renewed = time.monotonic()

    # -- the run ----------------------------------------------------------------------------------------
    def go(self, provider: ModelProvider) -> None:
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
        price = price_for(model_id, self.settings)
        message = self.run["message"]
        history = [
            item
            for item in MessagesRepo().newest(self.session_id, limit=CONTEXT_MESSAGES + 1)
            if item["message_id"] != self.run.get("user_message_id")
        ]
        system, chosen = build_context(agent, history, message)
        context = to_turns(system, payloads.resolve(chosen), message)
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
        )
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
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        usage = Usage(reply.input_tokens, reply.output_tokens, price.cost(reply.input_tokens, reply.output_tokens))
        usage_out = {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "cost_usd": usage.cost_usd,
        }
        content = "".join(self.text)
        self._end(
            turns.Ending(
                "completed",
                self._reply(content, model_id=reply.model_id, token_count=reply.output_tokens, elapsed_ms=elapsed_ms),
                {"type": "complete", "usage": usage_out},
                usage,
                {"usage": usage_out, "model_id": reply.model_id},
            )
        )

    def _relay(self, stream: ModelStream) -> bool:
        """Store the stream's deltas as events; False when the run stopped being this worker's (or ran out
        of time, and was ended), and nothing more is to be written."""
        pending: list[str] = []
        flushed = time.monotonic()
        for delta in stream:
            pending.append(delta)
            self.text.append(delta)
            waiting = sum(len(part.encode("utf-8")) for part in pending)
            if time.monotonic() - flushed >= FLUSH_SECONDS or waiting >= FLUSH_BYTES:
                if not self._flush(pending):
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
        """One transaction: the pending deltas as one event, the run's count and lease, the turn's lease."""
        if not pending:
            return True
        now = timeutil.epoch_seconds(timeutil.now())
        lease = now + self.settings.run_lease_seconds
        number = self.last_event + 1
        event = {"type": "assistant", "delta": "".join(pending), "message_id": self.reply_id, "at": timeutil.now_iso()}
        ttl = now + self.settings.run_events_retention_hours * 3600
        operations = [
            put(items.run_event(self.session_id, self.request_id, number, event, ttl=ttl)),
            self.repo.progress(
                self.session_id,
                self.request_id,
                worker=self.worker,
                last_event=self.last_event,
                added=1,
                lease_until=lease,
            ),
        ]
        if time.monotonic() - self.turn_renewed >= self.settings.run_lease_seconds / 3:
            operations.append(session_writes.renew_turn(self.session_id, self.request_id, lease))
        try:
            self.repo.write(operations)
        except table.TransactionCancelled:
            return False  # cancelled, or taken over: this worker writes nothing more
        self.last_event = number
        if len(operations) == 3:
            self.turn_renewed = time.monotonic()
        return True

    # -- endings ------------------------------------------------------------------------------------------
    def fail(self, code: str, detail: str, *, retryable: bool = False) -> None:
        """End the run `error` with an error reply (the session's turn completes, and passes on)."""
        content = f"The model could not answer ({code})."
        self._end(
            turns.Ending(
                "error",
                self._reply(content, model_id=self.model_id, token_count=0, elapsed_ms=None, is_error=True),
                {"type": "error", "code": code, "detail": detail, "retryable": retryable},
                None,
                {"error": {"code": code, "detail": detail, "retryable": retryable}},
            )
        )

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
