"""The agents a session can name (`agent_name`): their system prompt, their tools and how much a chat may use.

Agents are configuration: the `slides` agent is the chat agent's code path with another prompt and a tool.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sessions_api.providers import Tool

DEFAULT_AGENT = "chat"
WRITE_SLIDES = "write_slides"


@dataclass(frozen=True)
class Agent:
    name: str
    system_prompt: str
    max_output_tokens: int = 1024
    # The conversation sent as context, newest first, within this estimate: every token of it is paid for
    # on every chat, so the default agent keeps it modest; the others take long material.
    context_tokens: int = 24_000
    temperature: float = 0.5
    tools: tuple[str, ...] = ()


AGENTS: dict[str, Agent] = {
    agent.name: agent
    for agent in (
        Agent(
            "chat",
            "You are a helpful, concise assistant. Answer in the language of the user's last message.",
        ),
        Agent(
            "research",
            "You are a careful research assistant. Separate facts from assumptions and say what you are unsure of.",
            max_output_tokens=2048,
            context_tokens=64_000,
        ),
        Agent(
            "analysis",
            "You are a data and business analyst. Structure answers as findings, evidence and recommendations.",
            max_output_tokens=2048,
            context_tokens=64_000,
            temperature=0.2,
        ),
        Agent(
            "synthesis",
            "You turn conversations and notes into clear summaries, outlines and slide-ready bullet points.",
            max_output_tokens=2048,
            context_tokens=64_000,
        ),
        Agent(
            "slides",
            "You make slide decks. To write the session's deck, or revise some of its slides, call write_slides "
            "once with the slides: a title slide (<h1>, then a <p> subtitle), then one slide per idea (<h2> and a "
            "short <ul> of 3 to 5 bullets); put shared styles in css, never scripts. When asked to revise given "
            "slides, send only their replacements, in order. If the tool reports a problem, fix the deck and call "
            "it again. Once the deck is written, tell the user in one or two sentences what you made.",
            max_output_tokens=16_000,  # the deck itself is output
            context_tokens=64_000,
            temperature=0.3,
            tools=(WRITE_SLIDES,),
        ),
    )
}


def agent_for(name: str | None) -> Agent:
    """The named agent; an unknown name (agents are free-form on the session) gets the default one."""
    return AGENTS.get(name or DEFAULT_AGENT) or AGENTS[DEFAULT_AGENT]


def tools_of(agent: Agent) -> tuple[Tool, ...]:
    return tuple(_tool(name) for name in agent.tools)


@functools.cache
def _tool(name: str) -> Tool:
    if name != WRITE_SLIDES:
        raise KeyError(name)
    from sessions_api.models.decks import SlideDeck  # only a run that offers the tool pays for its schema

    return Tool(
        WRITE_SLIDES,
        "Write the session's slide deck: each slide's HTML is one slide, `css` styles them all. When revising "
        "given slides, `slides` holds only their replacements (any number, in order) and `css` is ignored.",
        _inlined(SlideDeck.model_json_schema()),
    )


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its `$defs` references written out: a model's tool schema is best self-contained."""
    definitions = schema.pop("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return expand(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: expand(value) for key, value in node.items()}
        if isinstance(node, list):
            return [expand(value) for value in node]
        return node

    return expand(schema)
