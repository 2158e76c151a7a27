"""Wording shared by the document formats."""

from __future__ import annotations

from typing import Any

from render.model import Document, SlideModel

TRUNCATED_NOTE = "The conversation is longer than an export carries; later messages are left out."
SCRIPTS_LINE = "Scripts and interactive content of the slides never run here and are left out of this document."


def summary_line(document: Document) -> str:
    session = document.session
    parts = [
        f"Session {session.get('session_id', '')}",
        f"status {session.get('status', '')}",
        f"created {session.get('created_at', '')}",
        f"{len(document.messages)} messages",
        f"{len(document.slides)} slides",
        f"exported {document.exported_at}",
    ]
    return " · ".join(parts) + ". " + SCRIPTS_LINE


def role_label(message: dict[str, Any]) -> str:
    label = str(message.get("role", "message")).capitalize()
    return label + (" (error)" if message.get("is_error") else "")


def slide_heading(slide: SlideModel) -> str:
    return f"Slide {slide.number}: {slide.title}" if slide.title else f"Slide {slide.number}"
