"""What the model sees of a conversation, and how much it may answer within the session's budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sessions_api import errors
from sessions_api.agents import Agent
from sessions_api.pricing import Price
from sessions_api.providers import Turn, estimate_tokens

CONTEXT_MESSAGES = 100  # read for context at most; the agent's token budget usually stops earlier
MIN_OUTPUT_TOKENS = 32  # a chat that could not even answer this much is refused as over budget


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
