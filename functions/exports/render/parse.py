"""Slide HTML → `SlideModel`, with the standard library's tolerant HTML parser.

Nothing is fetched or executed: scripts, event handlers, forms, frames and media are left out (and
listed in the slide's notes); images count only when given inline as `data:` URIs. Simple CSS — the
deck's stylesheet, `<style>` in the slide and `style=""` — gives colours, alignment, bold, italic, underline
and a block's font size, to the body and the title alike.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from PIL import Image

from render.limits import (
    MAX_CSS_SELECTORS,
    MAX_DECK_NODES,
    MAX_DECK_PICTURES,
    MAX_DECK_PIXELS,
    MAX_LIST_DEPTH,
    MAX_TABLE_CELLS,
    MAX_WORD_CHARS,
    DeckTooComplex,
)
from render.model import Align, Block, Cell, Para, Picture, Run, SlideModel, Table, stand_in

# A decompression bomb in a data: URI must not take the function's memory.
Image.MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 5 * 1024 * 1024

_BLOCKS = {
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "h1", "h2", "h3", "h4", "h5",
    "h6", "li", "ul", "ol", "blockquote", "pre", "figure", "figcaption", "table", "tr", "td", "th", "thead",
    "tbody", "tfoot", "caption", "dl", "dt", "dd", "hr", "address", "details", "summary", "body", "html",
}  # fmt: skip
_VOID = {"img", "br", "hr", "input", "meta", "link", "source", "wbr", "col", "area", "embed", "param", "track", "base"}
_SKIPPED = {"script", "style", "template", "noscript", "head", "title", "svg", "math", "canvas", "video", "audio",
            "iframe", "object", "select", "textarea", "button", "map", "dialog"}  # fmt: skip
_LEFT_OUT = {
    "script": "scripts",
    "canvas": "a canvas drawing",
    "video": "a video",
    "audio": "an audio clip",
    "iframe": "an embedded frame",
    "object": "an embedded object",
    "embed": "an embedded object",
    "svg": "an SVG drawing",
    "button": "buttons",
    "input": "form fields",
    "select": "form fields",
    "textarea": "form fields",
    "form": "a form",
    "dialog": "a dialog",
}
_NAMED_COLOURS = {
    "black": "000000", "white": "FFFFFF", "red": "FF0000", "green": "008000", "blue": "0000FF", "yellow": "FFFF00",
    "orange": "FFA500", "purple": "800080", "gray": "808080", "grey": "808080", "silver": "C0C0C0",
    "navy": "000080", "teal": "008080", "maroon": "800000", "olive": "808000", "lime": "00FF00", "aqua": "00FFFF",
    "fuchsia": "FF00FF", "darkgray": "A9A9A9", "darkgrey": "A9A9A9", "lightgray": "D3D3D3", "lightgrey": "D3D3D3",
    "darkblue": "00008B", "darkred": "8B0000", "darkgreen": "006400", "crimson": "DC143C", "gold": "FFD700",
    "brown": "A52A2A", "pink": "FFC0CB", "indigo": "4B0082", "coral": "FF7F50", "tomato": "FF6347",
    "steelblue": "4682B4", "slategray": "708090", "slategrey": "708090", "dimgray": "696969", "dimgrey": "696969",
}  # fmt: skip
_SIMPLE_SELECTOR = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)?((?:[.#][A-Za-z0-9_-]+)*)$")
_SAFE_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
_FONT_SIZE = re.compile(r"([0-9]{1,4}(?:\.[0-9]{1,4})?|\.[0-9]{1,4})(px|pt|rem)")
_POINTS_PER_UNIT = {"px": 0.75, "pt": 1.0, "rem": 12.0}  # a slide is 1280 × 720 px on 960 × 540 pt; 1rem is 16px
# The sizes CSS may set, in points: fitting scales text down to 0.3×, and PowerPoint takes none under 1 pt.
MIN_FONT_POINTS, MAX_FONT_POINTS = 6.0, 200.0


# -- CSS ------------------------------------------------------------------------------------------
Effect = dict[str, Any]  # the `_Style` fields a declaration block sets, e.g. {"color": "C00000", "bold": True}
Ranked = dict[str, tuple[tuple[int, int, int, int], Any]]  # field → ((specificity…, order), value)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)  # an unclosed comment runs to the end, as in CSS
_CSS_BRACES = re.compile(r"([{}])")


def declarations(text: str) -> dict[str, str]:
    found = {}
    for part in text.split(";"):
        name, _, value = part.partition(":")
        if value.strip():
            found[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return found


def effect(declared: dict[str, str]) -> Effect:
    """What a declaration block sets of the styles the documents carry; a value not understood sets nothing."""
    found: Effect = {}
    if "color" in declared and (value := colour(declared["color"])):
        found["color"] = value
    if declared.get("text-align") in ("left", "center", "right", "justify"):
        found["align"] = declared["text-align"]
    weight = declared.get("font-weight")
    if weight:
        found["bold"] = weight in ("bold", "bolder") or bool(re.fullmatch(r"[0-9]{3,4}", weight) and int(weight) >= 600)
    if "font-style" in declared:
        found["italic"] = declared["font-style"] in ("italic", "oblique")
    decoration = declared.get("text-decoration") or declared.get("text-decoration-line")
    if decoration:
        found["underline"] = "underline" in decoration
    if size := _FONT_SIZE.fullmatch(declared.get("font-size", "")):
        points = float(size.group(1)) * _POINTS_PER_UNIT[size.group(2)]
        found["size"] = min(max(points, MIN_FONT_POINTS), MAX_FONT_POINTS)
    return found


def colour(value: str) -> str | None:
    value = value.strip().lower()
    if value in _NAMED_COLOURS:
        return _NAMED_COLOURS[value]
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return "".join(c * 2 for c in value[1:]).upper()
    if re.fullmatch(r"#[0-9a-f]{6}([0-9a-f]{2})?", value):
        return value[1:7].upper()
    rgb = re.fullmatch(r"rgba?\(\s*([0-9]{1,9})\s*,\s*([0-9]{1,9})\s*,\s*([0-9]{1,9})\s*(,\s*[0-9.]+\s*)?\)", value)
    if rgb:
        return "".join(f"{min(int(part), 255):02X}" for part in rgb.groups()[:3])
    return None


@dataclass(frozen=True)
class _Selector:
    tag: str | None
    element_id: str | None
    classes: frozenset[str]
    specificity: tuple[int, int, int]


def _selector(text: str) -> _Selector | None:
    """A simple selector (tag, .class, #id and their compounds); None for any other kind, which is ignored."""
    parsed = _SIMPLE_SELECTOR.match(text)
    if not parsed:
        return None
    tag, rest = parsed.group(1), parsed.group(2)
    ids = re.findall(r"#([A-Za-z0-9_-]+)", rest)
    classes = frozenset(re.findall(r"\.([A-Za-z0-9_-]+)", rest))
    specificity = (len(ids), len(classes), int(bool(tag)))
    return _Selector(tag.lower() if tag else None, ids[0] if ids else None, classes, specificity)


def _blocks(css: str) -> list[tuple[str, str]]:
    """(selectors, declarations) of each flat `selectors { declarations }` block, found in one pass."""
    parts = _CSS_BRACES.split(_CSS_COMMENT.sub("", css))  # text, brace, text, brace, …, text
    return [
        (parts[index], parts[index + 2])
        for index in range(0, len(parts) - 3, 2)
        if parts[index].strip() and parts[index + 1] == "{" and parts[index + 3] == "}"
    ]


class Stylesheet:
    """A stylesheet's rules indexed so that an element meets only selectors that can match it, each distinct
    selector once (its rules merged), in lists that stay short: matching costs no rules × elements."""

    def __init__(self, css: str, first_order: int = 0) -> None:
        self.selector_count = 0
        merged: dict[_Selector, Ranked] = {}
        blocks = _blocks(css)
        for order, (selectors, body) in enumerate(blocks, start=first_order):
            declared = effect(declarations(body))
            for text in selectors.split(","):
                if not text.strip():
                    continue
                self.selector_count += 1
                selector = _selector(text.strip())
                if selector and declared:
                    rank = (*selector.specificity, order)
                    merged.setdefault(selector, {}).update({name: (rank, value) for name, value in declared.items()})
        self.next_order = first_order + len(blocks)
        # Keyed by its rarest class, a selector sits in a list only with selectors whose classes are all as
        # common: k such selectors need k classes each in k selectors, so a list holds about √(2 × selectors).
        frequency = Counter(name for selector in merged for name in selector.classes)
        self._index: dict[tuple[str | None, str | None, str | None], list[tuple[frozenset[str], Ranked]]] = {}
        for selector, fields in merged.items():
            rarest = min(selector.classes, key=lambda name: (frequency[name], name), default=None)
            key = (selector.tag, selector.element_id, rarest)
            self._index.setdefault(key, []).append((selector.classes, fields))

    def rank(self, tag: str, element_id: str | None, classes: frozenset[str], into: Ranked) -> None:
        """Add to `into` what the selectors matching the element set, the highest-ranked value per field winning."""
        for key_tag in (None, tag):
            for key_id in (None, element_id) if element_id else (None,):
                for key_class in (None, *classes):
                    for needed, fields in self._index.get((key_tag, key_id, key_class), ()):
                        if needed <= classes:
                            for name, ranked in fields.items():
                                if name not in into or ranked[0] > into[name][0]:
                                    into[name] = ranked


@dataclass(frozen=True)
class _Style:
    bold: bool = False
    italic: bool = False
    underline: bool = False
    color: str | None = None
    align: Align | None = None
    link: str | None = None
    size: float | None = None  # points

    def apply(self, change: Effect) -> _Style:
        return replace(self, **change) if change else self


_BOLD, _ITALIC = {"bold": True}, {"italic": True}
# A heading's size is its own (a browser's is relative): an inherited `body { font-size }` does not shrink it.
_HEADING = {"bold": True, "size": None}
_TAG_EFFECT: dict[str, Effect] = {
    **dict.fromkeys(("b", "strong", "th", "dt"), _BOLD),
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), _HEADING),
    **dict.fromkeys(("i", "em", "cite", "blockquote"), _ITALIC),
    "u": {"underline": True},
    "center": {"align": "center"},
}


# -- images ---------------------------------------------------------------------------------------
def picture(src: str, alt: str) -> Picture | None:
    """An inline `data:` image as PNG or JPEG, or None when it is not a usable raster image."""
    header, _, payload = src.partition(",")
    if not header.lower().startswith("data:image/") or ";base64" not in header.lower():
        return None
    try:
        raw = base64.b64decode(payload.strip(), validate=False)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) > MAX_IMAGE_BYTES:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            image.load()
    except Exception:
        return None
    if image.format == "JPEG" and image.mode in ("RGB", "L"):
        return Picture(raw, "jpeg", image.width, image.height, alt)
    if image.format == "PNG":
        return Picture(raw, "png", image.width, image.height, alt)
    converted = io.BytesIO()  # GIF, WebP, BMP…: every format library takes PNG
    image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB").save(converted, "PNG")
    return Picture(converted.getvalue(), "png", image.width, image.height, alt)


# -- the parser -----------------------------------------------------------------------------------
_CONTEXT_TAGS = {"h1": ("h", 1), "h2": ("h", 2), "h3": ("h", 3), "h4": ("h", 4), "h5": ("h", 5), "h6": ("h", 6),
                 "li": ("li", 0), "blockquote": ("quote", 0), "pre": ("pre", 0)}  # fmt: skip
_LIST_START = re.compile(r"[0-9]{1,9}")
# A whole tag (a quote left open runs to the end), something without content (a comment, a declaration, a
# bogus end tag), or a `<` that is text. Possessive, so that matching never backtracks.
_MARKUP_TOKEN = re.compile(
    r"""(?P<tag></?[A-Za-z](?:[^>"']|"[^"]*(?:"|\Z)|'[^']*(?:'|\Z))*+(?:>|\Z))"""
    r"|(?P<nothing><!--.*?(?:-->|\Z)|<[!?/][^>]*(?:>|\Z))|<",
    re.DOTALL,
)
_RAW_TEXT_START = re.compile(r"<(script|style)[\s/>]", re.IGNORECASE)


@dataclass
class _Open:
    """An open element with what its content inherits, so that nothing walks the stack per element."""

    tag: str
    style: _Style
    kind: str = "p"  # the paragraph kind of text inside: from the nearest heading, list item, quote or pre
    level: int = 0  # the heading level when kind is "h"
    in_pre: bool = False
    in_inner_table: bool = False  # inside a table inside a cell, which becomes that cell's text


class _SlideParser(HTMLParser):
    def __init__(self, sheets: list[Stylesheet]) -> None:
        super().__init__(convert_charrefs=True)
        self.sheets = sheets
        self.stack: list[_Open] = [_Open("#root", _Style())]
        self.open_at: dict[str, list[int]] = {}  # stack positions of the open elements, by tag
        self.blocks: list[Block] = []
        self.runs: list[Run] = []
        self.left_out: list[str] = []
        self.skip_depth = 0
        self.skip_tag: str | None = None
        self.lists: list[list[Any]] = []  # [ordered, counter] per open list
        self.item_started = False  # the current <li> has had its marker
        self.table_stack: list[tuple[list[list[Cell]] | None, list[Cell] | None]] = []
        self.rows: list[list[Cell]] | None = None
        self.row: list[Cell] | None = None
        self.cell: list[Run] | None = None
        self.cell_header = False
        self.cell_align: Align | None = None
        self.doc_title = ""
        self._in_title = False
        self.nodes = 0

    # style --------------------------------------------------------------------------------------
    def _style_for(self, tag: str, attrs: dict[str, str | None]) -> _Style:
        style = self.stack[-1].style.apply(_TAG_EFFECT.get(tag, {}))
        ranked: Ranked = {}
        classes = frozenset((attrs.get("class") or "").split())
        for sheet in self.sheets:
            sheet.rank(tag, attrs.get("id") or None, classes, ranked)
        style = style.apply({name: value for name, (_, value) in ranked.items()})
        if attrs.get("style"):
            style = style.apply(effect(declarations(attrs["style"] or "")))
        if tag == "a":
            href = (attrs.get("href") or "").strip()
            if href.lower().startswith("javascript:"):
                self.left_out.append("script links")
            style = replace(style, link=href if _SAFE_LINK.match(href) else None, underline=True)
            if style.color is None and _SAFE_LINK.match(href):
                style = replace(style, color="0563C1")
        return style

    # the stack ----------------------------------------------------------------------------------
    def _push(self, tag: str, style: _Style) -> None:
        parent = self.stack[-1]
        kind, level = _CONTEXT_TAGS.get(tag, (parent.kind, parent.level))
        self.open_at.setdefault(tag, []).append(len(self.stack))
        in_pre, in_inner_table = parent.in_pre or tag == "pre", parent.in_inner_table or tag == "#inner-table"
        self.stack.append(_Open(tag, style, kind, level, in_pre, in_inner_table))

    def _pop(self) -> None:
        self.open_at[self.stack.pop().tag].pop()

    def _nearest(self, tags: set[str]) -> int:
        """The stack position of the innermost open element among `tags`; 0 (the root) when none is open."""
        return max((self.open_at[tag][-1] for tag in tags if self.open_at.get(tag)), default=0)

    # blocks -------------------------------------------------------------------------------------
    def flush(self) -> None:
        if self.cell is not None:
            return  # a cell gathers everything inside it
        runs = _trim(self.runs)
        self.runs = []
        if not runs:
            return
        top = self.stack[-1]
        level = min(max(len(self.lists) - 1, 0), MAX_LIST_DEPTH) if top.kind == "li" else top.level
        marker = ""
        if top.kind == "li" and not self.item_started and self.lists:
            ordered, counter = self.lists[-1]
            marker = f"{counter}." if ordered else "•"
            self.item_started = True
        self.blocks.append(Para(top.kind, runs, level, marker, top.style.align, top.style.size))  # type: ignore[arg-type]

    def _close_to(self, tags: set[str], stop: set[str]) -> None:
        """Implicitly close an open `tags` element (HTML's optional end tags), not past any `stop` element."""
        index = self._nearest(tags)
        if index > self._nearest(stop):
            while len(self.stack) > index:
                self._end(self.stack[-1].tag)

    # parser callbacks ---------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        self.nodes += 1
        attrs = dict(attr_list)
        if any(name.startswith("on") for name in attrs):
            self.left_out.append("event handlers")
        if tag in _LEFT_OUT:
            self.left_out.append(_LEFT_OUT[tag])
        if tag == "title":
            self._in_title = True
        if self.skip_depth:
            if tag == self.skip_tag and tag not in _VOID:
                self.skip_depth += 1
            return
        if tag in _SKIPPED:
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "p":
            self._close_to({"p"}, {"li", "td", "th", "blockquote", "div"})
        elif tag == "li":
            self._close_to({"li"}, {"ul", "ol"})
        elif tag in ("td", "th"):
            self._close_to({"td", "th"}, {"tr", "table", "#inner-table"})
        elif tag == "tr":
            self._close_to({"tr"}, {"table", "#inner-table"})
        if tag in _BLOCKS or tag in ("img", "br"):
            self.flush()
        if tag == "br":
            if self.cell is not None:
                self.cell.append(Run("\n"))
            return
        if tag == "img":
            self._image(attrs)
            return
        if tag in _VOID:
            return
        style = self._style_for(tag, attrs)
        inner_table = tag == "table" and self.cell is not None  # a table inside a cell becomes that cell's text
        self._push("#inner-table" if inner_table else tag, style)
        if tag in ("ul", "ol"):
            start = attrs.get("start") or ""
            self.lists.append([tag == "ol", int(start) - 1 if _LIST_START.fullmatch(start) else 0])
        elif tag == "li":
            if self.lists:
                self.lists[-1][1] += 1
            self.item_started = False
        elif tag == "table" and not inner_table:
            self.table_stack.append((self.rows, self.row))
            self.rows, self.row = [], None
        elif tag == "tr" and self.rows is not None and self.cell is None:
            self.row = []
            self.rows.append(self.row)
        elif tag in ("td", "th") and self.rows is not None and self.cell is None:
            if self.row is None:
                self.row = []
                self.rows.append(self.row)
            self.cell, self.cell_header, self.cell_align = [], tag == "th", style.align

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if not self.skip_depth:
                    self.skip_tag = None
            return
        if tag in _VOID:
            return
        closes = {tag, "#inner-table"} if tag == "table" else {tag}
        if not self._nearest(closes):
            return  # a stray end tag
        while len(self.stack) > 1:
            top = self.stack[-1].tag
            self._end(top)
            if top in closes:
                break

    def _end(self, tag: str) -> None:
        if tag in _BLOCKS or tag == "#inner-table":
            self.flush()
            if self.cell is not None and (tag not in ("td", "th") or self.stack[-1].in_inner_table):
                self.cell.append(Run(" "))  # blocks inside a cell run on, separated
        self._pop()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.item_started = True
        elif (
            tag in ("td", "th") and self.cell is not None and self.row is not None and not self.stack[-1].in_inner_table
        ):
            self.row.append(Cell(_trim(self.cell), self.cell_header, self.cell_align))
            self.cell = None
        elif tag == "table":
            rows = [row for row in self.rows or [] if row]
            self.rows, self.row = self.table_stack.pop() if self.table_stack else (None, None)
            if rows:
                self.blocks.append(Table(rows))

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.doc_title:
            self.doc_title = " ".join(data.split())
        if self.skip_depth:
            return
        top = self.stack[-1]
        if top.in_pre and self.cell is None:
            self.nodes += data.count("\n") + 1  # each line is a paragraph of its own
            for number, line in enumerate(data.split("\n")):
                if number:
                    self.flush()
                if line:
                    self.runs.append(_run(line, top.style))
            return
        text = re.sub(r"\s+", " ", data)
        if not text:
            return
        self.nodes += 1
        (self.cell if self.cell is not None else self.runs).append(_run(text, top.style))

    def _image(self, attrs: dict[str, str | None]) -> None:
        src = (attrs.get("src") or "").strip()
        alt = " ".join((attrs.get("alt") or "").split())
        inline = src.lower().startswith("data:")
        if inline and self.cell is not None:  # a cell holds text: the picture is its stand-in, never decoded
            self.cell.append(stand_in(alt))
            return
        found = picture(src, alt) if inline else None
        if found is None:
            self.left_out.append(
                "an image that could not be decoded"
                if inline
                else "images that are not inline data: URIs (never fetched)"
            )
            if alt:
                target = self.cell if self.cell is not None else self.runs
                target.append(Run(f"[image: {alt}]", italic=True))
            return
        self.blocks.append(found)


def _whole_tags(markup: str) -> str:
    """The markup as HTMLParser reads it in linear time: every `<` starts a whole tag or is text, comments and
    declarations are gone, script and style contents are as they were. (HTMLParser rescans to the end of the slide
    for each tag it cannot close, quadratic in them, before Python 3.13.4.)"""
    kept, position = [], 0
    while (start := markup.find("<", position)) >= 0:
        kept.append(markup[position:start])
        token = _MARKUP_TOKEN.match(markup, start)
        assert token is not None  # the last alternative matches any `<`
        position = token.end()
        if token.group("nothing"):
            continue
        if not token.group("tag") or not token.group().endswith(">"):
            kept.append(html.escape(token.group(), quote=False))
            continue
        kept.append(token.group())
        raw_text = _RAW_TEXT_START.match(token.group())
        if raw_text and not token.group().endswith("/>"):  # up to its end tag, as HTMLParser's CDATA mode reads it
            closing = re.compile(rf"</\s*{raw_text.group(1)}\s*>", re.IGNORECASE).search(markup, position)
            end = closing.start() if closing else len(markup)
            kept.append(markup[position:end])
            position = end
    kept.append(markup[position:])
    return "".join(kept)


def _run(text: str, style: _Style) -> Run:
    return Run(text, style.bold, style.italic, style.underline, style.link, style.color)


def _trim(runs: list[Run]) -> list[Run]:
    """Collapse what HTML collapses: spaces at the edges of a block and doubled between runs."""
    groups: list[tuple[Run, list[str]]] = []  # runs of one style, their texts joined once at the end
    for run in runs:
        text = run.text
        if groups and groups[-1][1][-1].endswith((" ", "\n")) and text.startswith(" "):
            text = text.lstrip(" ")
        if not text:
            continue
        if groups and _same_style(groups[-1][0], run):
            groups[-1][1].append(text)
        else:
            groups.append((run, [text]))
    merged = [replace(run, text="".join(texts)) for run, texts in groups]
    kept = [index for index, run in enumerate(merged) if run.text.strip()]
    if not kept:
        return []
    merged = merged[kept[0] : kept[-1] + 1]
    merged[0] = replace(merged[0], text=merged[0].text.lstrip())
    merged[-1] = replace(merged[-1], text=merged[-1].text.rstrip())
    return merged


def _same_style(a: Run, b: Run) -> bool:
    return (a.bold, a.italic, a.underline, a.link, a.color) == (b.bold, b.italic, b.underline, b.link, b.color)


def _take_title(blocks: list[Block], fallback: str) -> tuple[str, Para | None, list[Block]]:
    """The slide's title and the heading it came from: its first h1, else its first heading, else its <title>
    (no heading); taken out of the body."""
    headings = [block for block in blocks if isinstance(block, Para) and block.kind == "h"]
    if headings:
        first = min(headings, key=lambda block: block.level)
        first = next(block for block in headings if block.level == first.level)
        return first.text.strip(), first, [block for block in blocks if block is not first]
    return fallback, None, blocks


def _raw_text_elements(markup: str, tags: str) -> list[tuple[int, int, int, int]]:
    """(start, content start, content end, end) of each closed `<tag …>…</tag>` among `tags` ("a|b"), in one pass."""
    found: list[tuple[int, int, int, int]] = []
    unclosed: set[str] = set()  # no closing tag after one opening means none after any later one either
    for opening in re.finditer(rf"<({tags})\b[^<>]*>", markup, flags=re.IGNORECASE):
        name = opening.group(1).lower()
        if name in unclosed or (found and opening.start() < found[-1][3]):
            continue
        closing = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(markup, opening.end())
        if closing is None:
            unclosed.add(name)
            continue
        found.append((opening.start(), opening.end(), closing.start(), closing.end()))
    return found


def check_caps(slide: SlideModel) -> None:
    """Raise `DeckTooComplex` for a slide with a table or a word over its cap (see `render.limits`)."""
    texts = [slide.title]
    for block in slide.blocks:
        if isinstance(block, Table):
            if block.cell_count > MAX_TABLE_CELLS:
                raise DeckTooComplex(
                    slide.number,
                    slide.slide_id,
                    f"a table has {block.cell_count:,} cells ({len(block.rows):,} rows × {block.columns:,} columns); "
                    f"at most {MAX_TABLE_CELLS:,} are exported",
                )
            texts += [cell.text for row in block.rows for cell in row]
        else:
            texts.append(block.text if isinstance(block, Para) else block.alt)
    longest = max((len(word) for text in texts for word in text.split()), default=0)
    if longest > MAX_WORD_CHARS:
        raise DeckTooComplex(
            slide.number,
            slide.slide_id,
            f"a word is {longest:,} characters long with no space to break it; at most {MAX_WORD_CHARS:,} are exported",
        )


@lru_cache(maxsize=4)
def _deck_stylesheet(css: str) -> Stylesheet:
    return Stylesheet(css)  # parsed once for all the deck's slides


def parse_slide(slide_id: str, number: int, markup: str, deck_css: str = "") -> SlideModel:
    """The slide's model; raises `DeckTooComplex` over a cap, else on nothing but a bug (callers fall back to
    `plain_text_slide`)."""
    deck_styles = _deck_stylesheet(deck_css)
    inline_css = "\n".join(markup[start:end] for _, start, end, _ in _raw_text_elements(markup, "style"))
    sheets = [deck_styles, Stylesheet(inline_css, first_order=deck_styles.next_order)]
    selectors = sum(sheet.selector_count for sheet in sheets)
    if selectors > MAX_CSS_SELECTORS:  # refused before the slide costs anything more
        raise DeckTooComplex(
            number,
            slide_id,
            f"the deck's css and this slide's <style> have {selectors:,} CSS selectors; "
            f"at most {MAX_CSS_SELECTORS:,} are exported",
        )
    parser = _SlideParser(sheets)
    parser.feed(_whole_tags(markup))
    parser.close()
    while len(parser.stack) > 1:
        parser._end(parser.stack[-1].tag)
    parser.flush()
    title, heading, blocks = _take_title(parser.blocks, parser.doc_title)
    left_out = list(dict.fromkeys(parser.left_out))
    slide = SlideModel(slide_id, number, title, blocks, left_out, nodes=parser.nodes, heading=heading)
    check_caps(slide)
    return slide


def plain_text(markup: str) -> str:
    kept, position = [], 0
    for start, _, _, end in _raw_text_elements(markup, "script|style|template"):
        kept.append(markup[position:start])
        position = end
    kept.append(markup[position:])
    return " ".join(html.unescape(re.sub(r"<[^<>]*>", " ", " ".join(kept))).split())


def plain_text_slide(slide_id: str, number: int, markup: str) -> SlideModel:
    text = plain_text(markup)
    blocks: list[Block] = [Para("p", [Run(text)])] if text else []
    slide = SlideModel(
        slide_id, number, "", blocks, ["formatting (the HTML could not be parsed)"], plain_text=True, nodes=1
    )
    check_caps(slide)
    return slide


@dataclass
class _DeckTotals:
    """What the slides parsed so far hold of what a deck may hold only so much of (see `render.limits`)."""

    nodes: int = 0
    pictures: int = 0
    pixels: int = 0

    def add(self, slide: SlideModel) -> None:
        pictures = [block for block in slide.blocks if isinstance(block, Picture)]
        self.nodes += slide.nodes
        self.pictures += len(pictures)
        self.pixels += sum(picture.width_px * picture.height_px for picture in pictures)
        for total, cap, what in (
            (self.nodes, MAX_DECK_NODES, "tags and pieces of text"),
            (self.pictures, MAX_DECK_PICTURES, "pictures"),
            (self.pixels, MAX_DECK_PIXELS, "pixels in pictures"),
        ):
            if total > cap:
                raise DeckTooComplex(
                    slide.number,
                    slide.slide_id,
                    f"the slides up to this one hold {total:,} {what}; a deck is exported with at most {cap:,}",
                )


def parse_deck(deck: dict[str, Any]) -> list[SlideModel]:
    """Every slide parsed once; one that cannot be parsed becomes its plain text and sinks nothing else, one
    over a cap refuses the deck."""
    css = deck.get("css") or ""
    models = []
    totals = _DeckTotals()
    for number, slide in enumerate(deck.get("slides") or [], start=1):
        try:
            model = parse_slide(slide["slide_id"], number, slide["html"], css)
        except DeckTooComplex:
            raise
        except Exception:
            model = plain_text_slide(slide["slide_id"], number, slide["html"])
        totals.add(model)
        models.append(model)
    return models
