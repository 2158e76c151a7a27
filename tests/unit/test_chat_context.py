"""What a chat sends the model and what it may cost: context, turns, prices, the output allowance."""

from __future__ import annotations

import pytest

from sessions_api import errors
from sessions_api.agents import Agent, agent_for
from sessions_api.logic.chat import title_from
from sessions_api.logic.context import build_context, output_allowance, to_turns
from sessions_api.pricing import UNKNOWN, Price, price_for
from sessions_api.providers import Turn, estimate_tokens
from sessions_api.settings import get_settings

AGENT = Agent("test", "Be kind.", max_output_tokens=500, context_tokens=100)


def item(role: str, content: str, **extra: object) -> dict[str, object]:
    return {"role": role, "content": content, **extra}


def test_context_takes_the_newest_messages_that_fit_and_never_error_replies() -> None:
    history_newest_first = [
        item("assistant", "a" * 30),
        item("assistant", "failed", is_error=True),
        item("user", "b" * 60),
        item("user", "c" * 600),  # over what is left: the older ones are not reached
        item("user", "d"),
    ]
    system, chosen = build_context(AGENT, history_newest_first, "now")
    assert system == "Be kind."
    assert [c["content"][0] for c in chosen] == ["b", "a"]  # oldest first


def test_large_contents_are_sized_without_being_read() -> None:
    stored_in_s3 = {"role": "user", "payload_key": "k", "content_bytes": 3000}
    assert build_context(AGENT, [stored_in_s3], "now")[1] == []


def test_turns_alternate_start_with_the_user_and_system_messages_join_the_prompt() -> None:
    items = [
        item("assistant", "Welcome"),
        item("user", "Hi"),
        item("system", "Formal tone."),
        item("user", "Still there?"),
        item("assistant", "Yes"),
    ]
    context = to_turns("Be kind.", items, "Bye")
    assert context.system == "Be kind.\n\nFormal tone."
    assert context.turns == [Turn("user", "Hi\n\nStill there?"), Turn("assistant", "Yes"), Turn("user", "Bye")]
    assert context.input_tokens == estimate_tokens(context.system) + sum(estimate_tokens(t.text) for t in context.turns)


def test_estimates_err_high() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("word " * 100) > 100  # ~125 real tokens for English would be about 4 chars each


def test_prices_per_model_with_profiles_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert price_for("amazon.nova-lite-v1:0", settings) == Price(0.06, 0.24)
    assert price_for("us.anthropic.claude-3-5-haiku-20241022-v1:0", settings) == Price(0.8, 4.0)
    assert price_for("some.new-model-v9", settings) == UNKNOWN
    custom = settings.model_copy(update={"model_prices": '{"some.new-model-v9": [1, 2], "*": [5, 25]}'})
    assert price_for("some.new-model-v9", custom) == Price(1.0, 2.0)
    assert price_for("another", custom) == Price(5.0, 25.0)
    assert Price(0.06, 0.24).cost(1_000_000, 1_000_000) == pytest.approx(0.30)


def test_the_output_allowance_is_what_the_budget_leaves() -> None:
    price = Price(1.0, 10.0)
    session = {"session_id": "s", "budget": {}}
    assert output_allowance(session, AGENT, price, 50) == 500
    tokens = {"session_id": "s", "budget": {"max_tokens": 1000}, "billed_tokens": 700}
    assert output_allowance(tokens, AGENT, price, 50) == 250
    cost = {"session_id": "s", "budget": {"max_cost_usd": 0.001}, "cost_usd": 0.0005}
    assert output_allowance(cost, AGENT, price, 100) == 40  # (0.0005 - 0.0001) / $10 per million
    with pytest.raises(errors.InsufficientBalance):
        output_allowance({"session_id": "s", "budget": {"max_tokens": 100}, "billed_tokens": 60}, AGENT, price, 20)


def test_agents_and_titles() -> None:
    assert agent_for("research").name == "research"
    assert agent_for("someone-else").name == agent_for(None).name == "chat"
    assert title_from("  Plan\n a   trip ") == "Plan a trip"
    assert title_from(" \n ") == "New Chat"
    assert len(title_from("x" * 500)) == 60
