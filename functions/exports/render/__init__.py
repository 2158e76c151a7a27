"""Document rendering for exports: slide HTML parsed once into a model, then rendered to each format.

Only the exports function carries this package and its libraries (python-pptx, python-docx, fpdf2);
each format's library is imported on first use, so a cold start pays only for the format asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from render.limits import DeckTooComplex
from render.model import Document
from render.parse import parse_deck

__all__ = ["DeckTooComplex", "document", "render"]

_MODULES = {
    "pptx": "render.pptx_file",
    "pdf": "render.pdf_file",
    "docx": "render.docx_file",
    "markdown": "render.markdown_file",
    "json": "render.json_file",
}


def document(source: dict[str, Any], *, with_slides: bool = True) -> Document:
    return Document(
        session=source["session"],
        slides=parse_deck(source["deck"]) if with_slides else [],
        deck=source["deck"],
        deck_version=source["deck_version"],
        messages=source["messages"],
        messages_truncated=source["messages_truncated"],
        comments=source["comments"],
        exported_at=source["exported_at"],
    )


def render(export_format: str, source: dict[str, Any]) -> bytes:
    """The file's bytes for `source` (what `sessions_api.logic.exports` gathered) in `export_format`; raises
    `DeckTooComplex` for a deck over a cap of `render.limits` (JSON, which carries the deck as data, never does)."""
    module = importlib.import_module(_MODULES[export_format])
    originals = {slide["slide_id"]: slide["html"] for slide in source["deck"].get("slides") or []}
    return module.render(document(source, with_slides=export_format != "json"), originals)
