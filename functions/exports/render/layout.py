"""Where each part of a slide goes on a 16:9 page, and at which font size its text fits.

Shared by the PPTX and PDF renderers, so both show the same slide. Text is measured with the bundled
DejaVu Sans metrics (wider than PowerPoint's default Calibri, so a fitted PPTX box never overflows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from PIL import ImageFont

from render.model import Align, Para, Picture, Run, SlideModel, Table

SLIDE_W, SLIDE_H = 960.0, 540.0  # points: 13.333 × 7.5 in, PowerPoint's 16:9
FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
FONT_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
LINE_HEIGHT = 1.25
SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.36, 0.3)
BASE_SIZE = {"p": 20.0, "li": 20.0, "quote": 20.0, "pre": 16.0}
HEADING_SIZE = {1: 28.0, 2: 26.0, 3: 24.0, 4: 22.0, 5: 20.0, 6: 20.0}
TITLE_SIZES = (36.0, 32.0, 28.0, 24.0, 20.0, 18.0, 16.0)
# A column's natural width is measured on its cells' first characters only: 300 are wider than 60 % of any box.
_NATURAL_CHARS = 300
TABLE_SIZES = (16.0, 14.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0)
CELL_PAD = 4.0
INDENT = 26.0  # per list level; the marker hangs in it
GAP = 16.0


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


TITLE_BOX = Box(40, 24, 880, 76)
CONTENT_BOX = Box(40, 112, 880, 392)
NOTE_BOX = Box(40, 512, 880, 20)


def style_key(bold: bool, italic: bool) -> str:
    return ("B" if bold else "") + ("I" if italic else "")


@cache
def _font(style: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / FONT_FILES[style]), 1000)


@cache
def _advance(style: str, char: str) -> float:
    return float(_font(style).getlength(char))


def text_width(text: str, bold: bool, italic: bool, size: float) -> float:
    style = style_key(bold, italic)
    return sum(_advance(style, char) for char in text) * size / 1000.0


_PIECES = re.compile(r"\n|[^\S\n]+|[^\s]+")


@dataclass
class Fragment:
    text: str
    run: Run
    x: float
    width: float


@dataclass
class Line:
    fragments: list[Fragment] = field(default_factory=list)

    @property
    def width(self) -> float:
        return self.fragments[-1].x + self.fragments[-1].width if self.fragments else 0.0


def wrap(runs: list[Run], width: float, size: float, *, max_lines: int, force_bold: bool = False) -> list[Line]:
    """Greedy word wrap of styled runs into lines no wider than `width` (long words are broken); past
    `max_lines` lines the rest is left unwrapped and out, so that what no box can show costs nothing."""
    lines = [Line()]
    x = 0.0
    pieces = ((run, piece.group()) for run in runs for piece in _PIECES.finditer(run.text))
    for run, piece in pieces:
        if len(lines) > max_lines:
            break
        bold = run.bold or force_bold
        if piece == "\n":
            lines.append(Line())
            x = 0.0
            continue
        piece_width = text_width(piece, bold, run.italic, size)
        if piece.isspace():
            if lines[-1].fragments:
                lines[-1].fragments.append(Fragment(" ", run, x, text_width(" ", bold, run.italic, size)))
                x += lines[-1].fragments[-1].width
            continue
        if x + piece_width > width and lines[-1].fragments:
            _strip_trailing_space(lines[-1])
            lines.append(Line())
            x = 0.0
        if piece_width > width:  # a word longer than the line: broken, all but its tail on lines of their own
            *heads, piece = _split_to_width(piece, width, style_key(bold, run.italic), size)
            for head in heads:
                lines[-1].fragments.append(Fragment(head, run, 0.0, text_width(head, bold, run.italic, size)))
                lines.append(Line())
            piece_width = text_width(piece, bold, run.italic, size)
        lines[-1].fragments.append(Fragment(piece, run, x, piece_width))
        x += piece_width
    del lines[max_lines:]
    for line in lines:
        _strip_trailing_space(line)
        _merge(line)
    while len(lines) > 1 and not lines[-1].fragments:
        lines.pop()
    return lines


def _split_to_width(word: str, width: float, style: str, size: float) -> list[str]:
    """`word` cut into pieces no wider than `width` (at least one character each), in one pass over it."""
    pieces, start, used = [], 0, 0.0
    limit = width * 1000.0 / size  # in the font's units, as `_advance` measures
    for index, char in enumerate(word):
        advance = _advance(style, char)
        if used + advance > limit and index > start:
            pieces.append(word[start:index])
            start, used = index, 0.0
        used += advance
    pieces.append(word[start:])
    return pieces


def _strip_trailing_space(line: Line) -> None:
    while line.fragments and not line.fragments[-1].text.strip():
        line.fragments.pop()


def _merge(line: Line) -> None:
    merged: list[Fragment] = []
    for fragment in line.fragments:
        if merged and merged[-1].run is fragment.run:
            merged[-1] = Fragment(merged[-1].text + fragment.text, fragment.run, merged[-1].x, 0.0)
            merged[-1].width = fragment.x + fragment.width - merged[-1].x
        else:
            merged.append(fragment)
    line.fragments = merged


# -- text -----------------------------------------------------------------------------------------
@dataclass
class LaidPara:
    para: Para
    size: float
    indent: float
    lines: list[Line]

    @property
    def bold(self) -> bool:
        return self.para.kind == "h"

    @property
    def line_height(self) -> float:
        return self.size * LINE_HEIGHT

    @property
    def space_after(self) -> float:
        return self.size * 0.35

    @property
    def height(self) -> float:
        return len(self.lines) * self.line_height + self.space_after


@dataclass
class TextBox:
    box: Box
    paras: list[LaidPara]
    scale: float
    overflow: bool


def para_size(para: Para) -> float:
    if para.size:
        return para.size
    return HEADING_SIZE.get(para.level, 20.0) if para.kind == "h" else BASE_SIZE[para.kind]


def lay_text(paras: list[Para], box: Box) -> TextBox:
    """The paragraphs at the largest scale at which they fit the box (the smallest one otherwise). Only what
    the box can show is wrapped: a scale is given up at the first paragraph past the box; at the smallest,
    paragraphs past it get no lines."""
    laid: list[LaidPara] = []
    for scale in SCALES:
        laid, height = [], 0.0
        for para in paras:
            laid.append(_lay_para(para, scale, box, past_the_box=height > box.h))
            height += laid[-1].height
            if height > box.h and scale != SCALES[-1]:
                break
        if height <= box.h:
            return TextBox(box, laid, scale, overflow=False)
    return TextBox(box, laid, SCALES[-1], overflow=True)


def _lay_para(para: Para, scale: float, box: Box, *, past_the_box: bool) -> LaidPara:
    size = para_size(para) * scale
    indent = (para.level + 1) * INDENT * scale if para.kind == "li" else 0.0
    if para.kind == "quote":
        indent = INDENT * scale
    limit = 0 if past_the_box else most_lines(box.h, size)
    lines = wrap(para.runs, box.w - indent, size, force_bold=para.kind == "h", max_lines=limit)
    return LaidPara(para, size, indent, lines)


def most_lines(height: float, size: float) -> int:
    """Lines worth wrapping for a box `height` tall: those it holds, and two more to tell (past any rounding)
    that it is cut."""
    return int(height // (size * LINE_HEIGHT)) + 2


# -- tables ---------------------------------------------------------------------------------------
@dataclass
class TableBox:
    box: Box
    table: Table
    size: float
    col_widths: list[float]
    row_heights: list[float]
    cells: list[list[list[Line]]]
    overflow: bool


def lay_table(table: Table, box: Box) -> TableBox:
    columns = max(table.columns, 1)
    natural = [40.0] * columns
    for row in table.rows:
        for index, cell in enumerate(row):
            measured = text_width(cell.text[:_NATURAL_CHARS], True, False, 12)
            natural[index] = max(natural[index], min(measured + 2 * CELL_PAD, box.w * 0.6))
    total = sum(natural)
    widths = [box.w * value / total for value in natural]
    for size in TABLE_SIZES:
        cells: list[list[list[Line]]] = []
        heights: list[float] = []
        height = 0.0
        for row in table.rows:  # a size is given up at the first row past the box; at the smallest, rows
            limit = 1 if height > box.h else most_lines(box.h, size)  # past it are laid out one line deep
            cells.append(
                [
                    wrap(cell.runs, widths[index] - 2 * CELL_PAD, size, force_bold=cell.header, max_lines=limit)
                    for index, cell in enumerate(row)
                ]
            )
            heights.append(max((len(lines) for lines in cells[-1]), default=1) * size * LINE_HEIGHT + 2 * CELL_PAD)
            height += heights[-1]
            if height > box.h and size != TABLE_SIZES[-1]:
                break
        if height <= box.h or size == TABLE_SIZES[-1]:
            return TableBox(box, table, size, widths, heights, cells, overflow=height > box.h)
    raise AssertionError("the smallest size is always returned")


# -- pictures -------------------------------------------------------------------------------------
@dataclass
class PictureBox:
    box: Box
    picture: Picture


def lay_picture(picture: Picture, box: Box) -> PictureBox:
    ratio = min(box.w / max(picture.width_px, 1), box.h / max(picture.height_px, 1))
    w, h = picture.width_px * ratio, picture.height_px * ratio
    return PictureBox(Box(box.x + (box.w - w) / 2, box.y + (box.h - h) / 2, w, h), picture)


# -- the slide ------------------------------------------------------------------------------------
@dataclass
class SlideLayout:
    title: str
    title_size: float
    title_lines: list[Line]
    title_align: Align | None
    text: TextBox | None
    visuals: list[TableBox | PictureBox]

    @property
    def overflow(self) -> bool:
        return bool(self.text and self.text.overflow) or any(
            isinstance(visual, TableBox) and visual.overflow for visual in self.visuals
        )


def lay_title(runs: list[Run], size: float | None = None) -> tuple[float, list[Line]]:
    """The title at the first size at which it fits the title box: its CSS size, then the defaults below it."""
    sizes = TITLE_SIZES if size is None else (size, *(default for default in TITLE_SIZES if default < size))
    lines: list[Line] = []
    for candidate in sizes:
        lines = wrap(runs, TITLE_BOX.w, candidate, max_lines=most_lines(TITLE_BOX.h, candidate))
        if len(lines) * candidate * LINE_HEIGHT <= TITLE_BOX.h:
            return candidate, lines
    return sizes[-1], lines[: int(TITLE_BOX.h // (sizes[-1] * LINE_HEIGHT))]


def lay_slide(slide: SlideModel) -> SlideLayout:
    size, align = (slide.heading.size, slide.heading.align) if slide.heading else (None, None)
    title_size, title_lines = lay_title(slide.title_runs, size) if slide.title else (0.0, [])
    title = (slide.title, title_size, title_lines, align)
    paras = [block for block in slide.blocks if isinstance(block, Para)]
    visuals = [block for block in slide.blocks if isinstance(block, Table | Picture)]
    area = CONTENT_BOX if slide.title else Box(CONTENT_BOX.x, TITLE_BOX.y, CONTENT_BOX.w, CONTENT_BOX.y + CONTENT_BOX.h)
    if not visuals:
        return SlideLayout(*title, lay_text(paras, area) if paras else None, [])
    if not paras:
        return SlideLayout(*title, None, _stack(visuals, area))
    wide = any(isinstance(visual, Table) and visual.columns > 3 for visual in visuals)
    if wide:  # a wide table needs the full width: text above it, as tall as it needs up to 40 %
        natural = lay_text(paras, Box(area.x, area.y, area.w, area.h * 0.4))
        used = min(sum(item.height for item in natural.paras), area.h * 0.4)
        text = lay_text(paras, Box(area.x, area.y, area.w, used))
        below = Box(area.x, area.y + used + GAP, area.w, area.h - used - GAP)
        return SlideLayout(*title, text, _stack(visuals, below))
    text_w = area.w * 0.52
    text = lay_text(paras, Box(area.x, area.y, text_w - GAP / 2, area.h))
    column = Box(area.x + text_w + GAP / 2, area.y, area.w - text_w - GAP / 2, area.h)
    return SlideLayout(*title, text, _stack(visuals, column))


def _stack(visuals: list[Table | Picture], area: Box) -> list[TableBox | PictureBox]:
    weights = [1.0 + 0.15 * len(visual.rows) if isinstance(visual, Table) else 1.5 for visual in visuals]
    remaining_h, remaining_weight = area.h - GAP * (len(visuals) - 1), sum(weights)
    placed: list[TableBox | PictureBox] = []
    y = area.y
    for visual, weight in zip(visuals, weights, strict=True):
        slot = Box(area.x, y, area.w, remaining_h * weight / remaining_weight)
        if isinstance(visual, Table):
            table = lay_table(visual, slot)
            used = min(sum(table.row_heights), slot.h)  # a short table leaves its unused height to the rest
            placed.append(table)
        else:
            placed.append(lay_picture(visual, slot))
            used = slot.h
        remaining_h -= used
        remaining_weight -= weight
        y += used + GAP
    return placed
