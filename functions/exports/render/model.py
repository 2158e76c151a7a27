"""The slide model every format renders: what a slide's HTML says, parsed once, with nothing executable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Align = Literal["left", "center", "right", "justify"]


@dataclass(frozen=True)
class Run:
    text: str
    bold: bool = False
    italic: bool = False
    underline: bool = False
    link: str | None = None
    color: str | None = None  # RRGGBB


@dataclass
class Para:
    kind: Literal["p", "h", "li", "quote", "pre"]
    runs: list[Run]
    level: int = 0  # heading level (1-6) for "h", nesting depth (0…) for "li"
    marker: str = ""  # "•" or "3." on a list item's first paragraph
    align: Align | None = None
    size: float | None = None  # points, from CSS `font-size`; None: the kind's own size

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass
class Cell:
    runs: list[Run]
    header: bool = False
    align: Align | None = None

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass
class Table:
    rows: list[list[Cell]]

    @property
    def columns(self) -> int:
        return max((len(row) for row in self.rows), default=0)

    @property
    def cell_count(self) -> int:
        """The cells of its grid, as every format draws it: a short row is padded to the widest."""
        return len(self.rows) * self.columns

    @property
    def has_header(self) -> bool:
        return bool(self.rows) and all(cell.header for cell in self.rows[0])


def stand_in(alt: str) -> Run:
    """What a document shows where a picture cannot go."""
    return Run(f"[image: {alt or 'picture'}]", italic=True)


@dataclass
class Picture:
    data: bytes
    extension: Literal["png", "jpeg"]
    width_px: int
    height_px: int
    alt: str = ""

    @property
    def stand_in(self) -> Run:
        return stand_in(self.alt)


Block = Para | Table | Picture


@dataclass
class SlideModel:
    slide_id: str
    number: int  # 1-based
    title: str
    blocks: list[Block] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # what the documents do not carry, said in the notes
    plain_text: bool = False  # the HTML could not be parsed: the slide is its plain text
    nodes: int = 0  # tags and pieces of text parsed: what rendering the slide costs grows with
    heading: Para | None = None  # the heading the title was taken from, styled as the deck's CSS says

    @property
    def title_runs(self) -> list[Run]:
        """The title as styled runs: its heading's, else (a `<title>`, no heading) the title in bold."""
        return self.heading.runs if self.heading else [Run(self.title, bold=True)]

    @property
    def paragraphs(self) -> list[Para]:
        return [block for block in self.blocks if isinstance(block, Para)]

    def notes(self, deck_has_scripts: bool) -> list[str]:
        lines = [f"Slide id: {self.slide_id}"]
        if self.plain_text:
            lines.append("This slide's HTML could not be parsed; it is shown as its plain text.")
        left_out = list(self.left_out)
        if deck_has_scripts:
            left_out.insert(0, "scripts")
        if left_out:
            lines.append(
                "Left out of this export (scripts and interactive content never run here): "
                + "; ".join(dict.fromkeys(left_out))
                + "."
            )
        return lines


@dataclass(frozen=True)
class Document:
    """Everything an export may contain, as plain data."""

    session: dict[str, Any]
    slides: list[SlideModel]
    deck: dict[str, Any]
    deck_version: int
    messages: list[dict[str, Any]]
    messages_truncated: bool
    comments: list[dict[str, Any]]
    exported_at: str

    @property
    def title(self) -> str:
        return str(self.session.get("title") or "Session")

    @property
    def has_scripts(self) -> bool:
        """The deck's own scripts or any slide's (`scripts` next to its `html`): never run, noted as left out."""
        slides = self.deck.get("slides") or []
        return _any_script(self.deck.get("scripts")) or any(_any_script(slide.get("scripts")) for slide in slides)


def _any_script(scripts: Any) -> bool:
    """A script string, or a list of them, with some code in it."""
    return bool(scripts.strip() if isinstance(scripts, str) else [s for s in scripts or [] if s.strip()])
