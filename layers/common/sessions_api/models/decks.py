"""Slide decks and exports as they cross HTTP."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from sessions_api.models.types import StrictModel, Text

MAX_SLIDES = 500
MAX_SLIDE_HTML_CHARS = 200_000
MAX_CSS_CHARS = 200_000
MAX_SCRIPT_CHARS = 200_000
MAX_SCRIPTS = 50
# The slides a chat revises travel with its run (one item, 400 KB): what the model is shown of them is bounded.
MAX_CONTEXT_CHARS = 100_000
SLIDE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

SlideId = Annotated[str, StringConstraints(pattern=SLIDE_ID_PATTERN), Field(examples=["slide-1"])]
SlideHtml = Annotated[Text, StringConstraints(max_length=MAX_SLIDE_HTML_CHARS)]
Css = Annotated[Text, StringConstraints(max_length=MAX_CSS_CHARS)]
Script = Annotated[Text, StringConstraints(max_length=MAX_SCRIPT_CHARS)]


SLIDE_SCRIPTS_DESCRIPTION = "This slide's script: kept with it, never run by the API, left out of every export"


class SlideIn(StrictModel):
    html: SlideHtml = Field(description="Stored as given and never executed by the API")
    scripts: Script | None = Field(default=None, description=SLIDE_SCRIPTS_DESCRIPTION)


class Slide(StrictModel):
    slide_id: SlideId
    html: SlideHtml = Field(description="Stored as given and never executed by the API")
    scripts: Script | None = Field(default=None, description=SLIDE_SCRIPTS_DESCRIPTION)


class SlideDeck(StrictModel):
    slides: Annotated[list[Slide], Field(max_length=MAX_SLIDES)] = Field(default_factory=list)
    css: Css = ""
    scripts: Script | Annotated[list[Script], Field(max_length=MAX_SCRIPTS)] = Field(
        default_factory=list, description="Kept with the deck; left out of every export"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> SlideDeck:
        seen: set[str] = set()
        for slide in self.slides:
            if slide.slide_id in seen:
                raise ValueError(f"slide_id {slide.slide_id!r} is used more than once")
            seen.add(slide.slide_id)
        return self


class SlideDeckOut(SlideDeck):
    slide_count: int


class DeckOut(BaseModel):
    session_id: str
    slide_deck: SlideDeckOut | None = Field(description="null while the session has no deck")
    version: int = Field(description="The deck's version (also its ETag); 0 while the session has no deck")


class SlideContext(StrictModel):
    """The slides a chat revises (seed 000's shape): their 0-based positions, one run of consecutive ones, and
    their HTML as the client shows them."""

    indices: Annotated[list[Annotated[int, Field(ge=0, lt=MAX_SLIDES)]], Field(min_length=1, max_length=MAX_SLIDES)]
    slide_htmls: Annotated[list[SlideHtml], Field(min_length=1, max_length=MAX_SLIDES)]

    @model_validator(mode="after")
    def _one_run(self) -> SlideContext:
        if self.indices != list(range(self.indices[0], self.indices[0] + len(self.indices))):
            raise ValueError("indices must be consecutive positions in ascending order, e.g. [2, 3, 4]")
        if len(self.slide_htmls) != len(self.indices):
            raise ValueError("slide_htmls must hold one HTML string for each index")
        if sum(len(html) for html in self.slide_htmls) > MAX_CONTEXT_CHARS:
            raise ValueError(f"slide_htmls hold at most {MAX_CONTEXT_CHARS:,} characters together")
        return self


class SlideOut(BaseModel):
    session_id: str
    slide: Slide
    position: int = Field(description="0-based index of the slide in the deck")
    version: int


class ExportFormat(StrEnum):
    PPTX = "pptx"
    PDF = "pdf"
    DOCX = "docx"
    MARKDOWN = "markdown"
    JSON = "json"


class ExportIn(StrictModel):
    format: ExportFormat | None = Field(default=None, description="`pptx` unless given here or as `?format=`")


class ExportOut(BaseModel):
    export_id: str
    session_id: str
    format: ExportFormat
    content_type: str
    file_name: str
    size_bytes: int
    sha256: str
    slide_count: int
    message_count: int
    created_at: str
    created_by: str
    download_url: str = Field(description="Presigned; valid for 15 minutes")
    expires_at: str = Field(description="When download_url stops working")


class ExportList(BaseModel):
    session_id: str
    exports: list[ExportOut]
    next_cursor: str | None
    has_more: bool
