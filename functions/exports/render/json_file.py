"""JSON: the whole session as one document — session, messages, deck and comments."""

from __future__ import annotations

import json

from render.model import Document

FORMAT = "sessions-api.export/v1"


def render(document: Document, originals: dict[str, str]) -> bytes:
    body = {
        "format": FORMAT,
        "exported_at": document.exported_at,
        "session": document.session,
        "messages": document.messages,
        "messages_truncated": document.messages_truncated,
        "slide_deck": document.deck,
        "deck_version": document.deck_version,
        "comments": document.comments,
        "notes": ["The deck's scripts are kept as data here and were never run."] if document.has_scripts else [],
    }
    return json.dumps(body, ensure_ascii=False, indent=2).encode()
