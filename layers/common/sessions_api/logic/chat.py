"""Chat: store the user's message, ask the model with the conversation as context, store its reply.

DynamoDB requests of a chat on an existing session, by its owner or a sharee alike: BatchGetItem (access,
agent, model, budget), Query (the newest messages, for context), TransactWriteItems (the lock and the
user's message) and TransactWriteItems (the reply, the usage, the lock released). Both writes carry the
access the first read resolved (a sharee's share is re-checked inside each transaction). A chat without
a session creates a temporary one instead of the two reads.

- One chat at a time per session: the user message's transaction takes a lease (`chat_lock_until`,
  epoch seconds, with `chat_lock_id`) if it is absent or past; a second chat meanwhile gets
  `409 session_busy`. The reply's transaction releases it, so a crashed invocation holds the session
  for one lease at most.
- The user's message is stored before the model is called and is never lost: when the model fails,
  an `is_error` assistant reply is stored and the answer is a problem (503 to retry, 502 otherwise).
- The budget (`max_tokens`, `max_cost_usd`) is checked before anything is stored (402), against what
  the session has been billed (`billed_tokens`, `cost_usd`; they never go down) plus this call's
  estimated input; the model's output allowance is capped to what is left, so a chat never overspends
  by more than the estimate's error. The lock's transaction re-checks that the billed amounts are the
  ones the check saw.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.agents import Agent, agent_for
from sessions_api.dal import items, payloads, session_writes
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.session_writes import Lease, Usage
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
from sessions_api.logic.policy import Access, Action, Moved, Permission
from sessions_api.logic.sessions import Sessions
from sessions_api.models.api import CreateSessionIn
from sessions_api.models.entities import plain
from sessions_api.models.messages import ChatIn
from sessions_api.observability import logger
from sessions_api.pricing import Price, price_for
from sessions_api.providers import ModelFailure, ModelProvider, ModelReply, ModelRequest, Turn, estimate_tokens
from sessions_api.settings import Settings

CONTEXT_MESSAGES = 100  # read for context at most; the agent's token budget usually stops earlier
MIN_OUTPUT_TOKENS = 32  # a chat that could not even answer this much is refused as over budget
ATTEMPTS = 3
TITLE_CHARS = 60


@dataclass(frozen=True)
class Context:
    system: str
    turns: list[Turn]
    input_tokens: int  # estimated


def build_context(agent: Agent, history: list[dict[str, Any]], message: str) -> tuple[str, list[dict[str, Any]]]:
    """Which earlier messages fit the agent's context budget, newest first (their contents unresolved).

    Returns the system prompt and the chosen items, oldest first. Error replies are never context.
    """
    budget = agent.context_tokens - estimate_tokens(agent.system_prompt) - estimate_tokens(message)
    chosen: list[dict[str, Any]] = []
    for item in history:  # newest first
        if item.get("is_error"):
            continue
        cost = int(item.get("content_bytes") or len(str(item.get("content", "")).encode("utf-8"))) // 3 + 1
        if cost > budget:
            break
        budget -= cost
        chosen.append(item)
    return agent.system_prompt, list(reversed(chosen))


def to_turns(system: str, items: list[dict[str, Any]], message: str) -> Context:
    """Converse's shape: system messages join the system prompt; turns alternate and start with the user."""
    system_parts = [system] if system else []
    turns: list[Turn] = []
    for item in [*items, {"role": "user", "content": message}]:
        role, text = item["role"], item["content"]
        if role == "system":
            system_parts.append(text)
        elif turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].text}\n\n{text}")
        elif turns or role == "user":
            turns.append(Turn(role, text))
    prompt = "\n\n".join(system_parts)
    return Context(prompt, turns, estimate_tokens(prompt) + sum(estimate_tokens(turn.text) for turn in turns))


def output_allowance(session: dict[str, Any], agent: Agent, price: Price, input_tokens: int) -> int:
    """How many tokens the model may answer with, or 402 when the budget cannot pay for this chat."""
    allowance = agent.max_output_tokens
    budget = session.get("budget") or {}
    max_tokens, max_cost = budget.get("max_tokens"), budget.get("max_cost_usd")
    if max_tokens is not None:
        allowance = min(allowance, int(max_tokens) - int(session.get("billed_tokens", 0)) - input_tokens)
    if max_cost is not None:
        left = float(max_cost) - float(session.get("cost_usd", 0)) - price.cost(input_tokens, 0)
        if price.output_per_million > 0:
            allowance = min(allowance, math.floor(left * 1_000_000 / price.output_per_million))
        elif left < 0:
            allowance = 0
    if allowance < MIN_OUTPUT_TOKENS:
        raise errors.InsufficientBalance(
            f"Session {session['session_id']}'s budget does not cover another chat "
            f"(about {input_tokens} input tokens and at least {MIN_OUTPUT_TOKENS} output tokens)"
        )
    return allowance


def title_from(message: str) -> str:
    words = " ".join(message.split())
    return (words[: TITLE_CHARS - 1] + "…" if len(words) > TITLE_CHARS else words) or "New Chat"


@dataclass
class ChatTurn:
    """What a chat turn carries from taking the lock to storing the reply."""

    access: Access
    agent: Agent
    model_id: str
    price: Price
    context: Context
    allowance: int
    user_message: dict[str, Any]
    lock_id: str
    elapsed_ms: int = 0

    @property
    def session_id(self) -> str:
        return str(self.access.session["session_id"])


@dataclass
class Chat:
    settings: Settings
    provider: ModelProvider

    def chat(self, caller: Caller, session_id: str | None, body: ChatIn, *, request_id: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        if session_id is None:
            turn = self._start(caller, self._temporary_session(caller, body), [], body)
        else:
            for _ in range(ATTEMPTS):
                access = authorized.read(caller, session_id, Action.WRITE)
                self._precheck(access.session)
                try:
                    newest = MessagesRepo().newest(session_id, limit=CONTEXT_MESSAGES)
                    turn = self._start(caller, access, newest, body)
                    break
                except Moved:
                    continue
            else:
                raise errors.Conflict(f"Session {session_id} keeps changing; retry the chat")
        reply, failure = self._ask(turn)
        assistant = self._finish(caller, turn, reply, failure)
        if failure is not None:
            raise self._problem(turn, assistant, failure)
        assert reply is not None
        cost = turn.price.cost(reply.input_tokens, reply.output_tokens)
        return {
            "response": reply.text,
            "session_id": turn.session_id,
            "message_id": assistant["message_id"],
            "user_message_id": turn.user_message["message_id"],
            "model_id": reply.model_id,
            "execution_time": round(time.perf_counter() - started, 3),
            "request_id": request_id,
            "usage": {
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens,
                "cost_usd": cost,
            },
        }

    # -- steps ------------------------------------------------------------------------------------
    def _temporary_session(self, caller: Caller, body: ChatIn) -> Access:
        """A session opened for this chat, and the owner's access to it (so the chat reads nothing more)."""
        request = CreateSessionIn(
            title=title_from(body.message),
            metadata=body.metadata or {},
            idle_timeout_minutes=self.settings.temporary_session_idle_minutes,
        )
        created = Sessions(self.settings).create(caller, request, temporary=True)
        session = {name: created[name] for name in ("session_id", "created_by", "agent_name", "model_id", "status")}
        return Access(session, Permission.OWNER, None)

    @staticmethod
    def _precheck(session: dict[str, Any]) -> None:
        """Refuse early what the lock's transaction would refuse anyway, before any work."""
        session_id = session["session_id"]
        problem = policy.closed(session_id, session, session_writes.OPEN_FOR_MESSAGES)
        if problem is None and (session.get("chat_lock_until") or 0) >= timeutil.epoch_seconds(timeutil.now()):
            problem = policy.busy(session_id)
        if problem is not None:
            raise problem

    def _start(self, caller: Caller, access: Access, history: list[dict[str, Any]], body: ChatIn) -> ChatTurn:
        """Check the budget, then take the lock and store the user's message in one transaction.

        The session item is as read (numbers as DynamoDB returned them, for exact conditions).
        """
        stored = access.session
        session = plain(stored)
        session_id = session["session_id"]
        agent = agent_for(session.get("agent_name"))
        model_id = self.provider.model_for(session.get("model_id") or self.settings.default_model_id)
        price = price_for(model_id, self.settings)
        system, chosen = build_context(agent, history, body.message)
        context = to_turns(system, payloads.resolve(chosen), body.message)
        allowance = output_allowance(session, agent, price, context.input_tokens)
        moment = timeutil.now()
        at = timeutil.iso(moment)
        user_message = items.new_message(
            session_id, role="user", content=body.message, at=at, agent_name=agent.name, metadata=body.metadata or None
        )
        lock_id = uuid.uuid4().hex
        now_epoch = timeutil.epoch_seconds(moment)
        has_budget = any(value is not None for value in (session.get("budget") or {}).values())
        change = session_writes.append_messages(
            session_id,
            MessagesRepo.offload([user_message], session["created_by"]),
            items.messages_added(session_id, caller.user_id, at, [user_message]),
            moment=moment,
            lease=Lease(lock_id, now_epoch, now_epoch + self.settings.chat_lease_seconds),
            # The budget check above saw these amounts: a chat finishing meanwhile makes this one plan again.
            billed=(stored.get("billed_tokens"), stored.get("cost_usd")) if has_budget else None,
        )
        authorized.write(caller, Action.WRITE, change, access=access)
        return ChatTurn(access, agent, model_id, price, context, allowance, user_message, lock_id)

    def _ask(self, turn: ChatTurn) -> tuple[ModelReply | None, ModelFailure | None]:
        request = ModelRequest(
            model_id=turn.model_id,
            system=turn.context.system,
            turns=turn.context.turns,
            max_output_tokens=turn.allowance,
            temperature=turn.agent.temperature,
        )
        started = time.perf_counter()
        try:
            reply = self.provider.converse(request)
        except ModelFailure as failure:
            turn.elapsed_ms = int((time.perf_counter() - started) * 1000)
            return None, failure
        turn.elapsed_ms = int((time.perf_counter() - started) * 1000)
        return reply, None

    def _finish(
        self, caller: Caller, turn: ChatTurn, reply: ModelReply | None, failure: ModelFailure | None
    ) -> dict[str, Any]:
        """Store the reply (or the error reply) with the usage, releasing the lock if it is still ours."""
        moment = timeutil.now()
        at = timeutil.iso(moment)
        if reply is not None:
            content, tokens, input_tokens = reply.text, reply.output_tokens, reply.input_tokens
            model_id = reply.model_id
        else:
            assert failure is not None
            # The provider's own message can name accounts and roles: it goes to the log, not the conversation.
            logger.warning("Model failed", extra={"code": failure.code, "reason": failure.reason})
            content, tokens, input_tokens = f"The model could not answer ({failure.code}).", 0, 0
            model_id = turn.model_id
        assistant = items.new_message(
            turn.session_id,
            role="assistant",
            content=content,
            at=at,
            model_id=model_id,
            agent_name=turn.agent.name,
            token_count=tokens,
            response_time_ms=turn.elapsed_ms,
            is_error=failure is not None,
        )
        stored = MessagesRepo.offload([assistant], turn.access.session["created_by"])
        usage = Usage(input_tokens, tokens, turn.price.cost(input_tokens, tokens))
        for release in (turn.lock_id, None):
            change = session_writes.append_messages(
                turn.session_id,
                stored,
                items.messages_added(turn.session_id, caller.user_id, at, [assistant]),
                moment=moment,
                open_only=False,  # the turn began while the session was open; its reply completes it
                release=release,
                usage=usage,
            )
            try:
                authorized.write(caller, Action.WRITE, change, access=turn.access)
                return assistant
            except Moved:
                continue  # our lease ran out and another chat holds the lock: store the reply, leave the lock
        raise errors.Conflict(f"Session {turn.session_id} changed while the reply was stored")

    @staticmethod
    def _problem(turn: ChatTurn, assistant: dict[str, Any], failure: ModelFailure) -> errors.ApiError:
        stored = {"session_id": turn.session_id, "user_message_id": turn.user_message["message_id"]}
        stored["message_id"] = assistant["message_id"]
        if failure.retryable:
            problem: errors.ApiError = errors.ServiceUnavailable(
                f"The model is unavailable ({failure.code}); your message is stored, retry the chat", retry_after=5
            )
        else:
            problem = errors.ModelFailed(f"The model refused the request ({failure.code}); your message is stored")
        problem.extra = stored
        return problem
