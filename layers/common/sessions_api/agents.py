"""The agents a session can name (`agent_name`): their system prompt and how much a chat may use."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_AGENT = "chat"


@dataclass(frozen=True)
class Agent:
    name: str
    system_prompt: str
    max_output_tokens: int = 1024
    # The conversation sent as context, newest first, within this estimate: every token of it is paid for
    # on every chat, so the default agent keeps it modest; the others take long material.
    context_tokens: int = 24_000
    temperature: float = 0.5


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
    )
}


def agent_for(name: str | None) -> Agent:
    """The named agent; an unknown name (agents are free-form on the session) gets the default one."""
    return AGENTS.get(name or DEFAULT_AGENT) or AGENTS[DEFAULT_AGENT]
