"""Slide HTML → `SlideModel`, with the standard library's tolerant HTML parser.

Nothing is fetched or executed: scripts, event handlers, forms, frames and media are left out (and
listed in the slide's notes); images count only when given inline as `data:` URIs. Simple CSS — the
deck's stylesheet, `<style>` in the slide and `style=""` — gives colours, alignment, bold and italic.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import re
import warnings
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any

from PIL import Image

from render.model import Align, Block, Cell, Para, Picture, Run, SlideModel, Table

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


# -- CSS ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rule:
    specificity: tuple[int, int, int]
    order: int
    tag: str | None
    element_id: str | None
    classes: frozenset[str]
    declarations: dict[str, str]

    def matches(self, tag: str, element_id: str | None, classes: set[str]) -> bool:
        return (
            (self.tag is None or self.tag == tag)
            and (self.element_id is None or self.element_id == element_id)
            and self.classes <= classes
        )


def declarations(text: str) -> dict[str, str]:
    found = {}
    for part in text.split(";"):
        name, _, value = part.partition(":")
        if value.strip():
            found[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return found


def stylesheet(css: str, start: int = 0) -> list[_Rule]:
    """Flat rules with simple selectors (tag, .class, #id and their compounds); the rest is ignored."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    rules = []
    for order, match in enumerate(re.finditer(r"([^{}]+)\{([^{}]*)\}", css), start=start):
        body = declarations(match.group(2))
        for selector in match.group(1).split(","):
            parsed = _SIMPLE_SELECTOR.match(selector.strip())
            if not parsed or not selector.strip():
                continue
            tag, rest = parsed.group(1), parsed.group(2)
            ids = re.findall(r"#([A-Za-z0-9_-]+)", rest)
            classes = frozenset(re.findall(r"\.([A-Za-z0-9_-]+)", rest))
            specificity = (len(ids), len(classes), 1 if tag else 0)
            rules.append(
                _Rule(specificity, order, tag.lower() if tag else None, ids[0] if ids else None, classes, body)
            )
    return rules


def colour(value: str) -> str | None:
    value = value.strip().lower()
    if value in _NAMED_COLOURS:
        return _NAMED_COLOURS[value]
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return "".join(c * 2 for c in value[1:]).upper()
    if re.fullmatch(r"#[0-9a-f]{6}([0-9a-f]{2})?", value):
        return value[1:7].upper()
    rgb = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(,\s*[\d.]+\s*)?\)", value)
    if rgb:
        return "".join(f"{min(int(part), 255):02X}" for part in rgb.groups()[:3])
    return None


@dataclass(frozen=True)
class _Style:
    bold: bool = False
    italic: bool = False
    underline: bool = False
    color: str | None = None
    align: Align | None = None
    link: str | None = None

    def apply(self, declared: dict[str, str]) -> _Style:
        style = self
        if "color" in declared and (value := colour(declared["color"])):
            style = replace(style, color=value)
        if declared.get("text-align") in ("left", "center", "right", "justify"):
            style = replace(style, align=declared["text-align"])  # type: ignore[arg-type]
        weight = declared.get("font-weight")
        if weight:
            style = replace(style, bold=weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600))
        if "font-style" in declared:
            style = replace(style, italic=declared["font-style"] in ("italic", "oblique"))
        decoration = declared.get("text-decoration") or declared.get("text-decoration-line")
        if decoration:
            style = replace(style, underline="underline" in decoration)
        return style


_TAG_STYLE = {
    "b": {"font-weight": "bold"},
    "strong": {"font-weight": "bold"},
    "th": {"font-weight": "bold"},
    "h1": {"font-weight": "bold"},
    "h2": {"font-weight": "bold"},
    "h3": {"font-weight": "bold"},
    "h4": {"font-weight": "bold"},
    "h5": {"font-weight": "bold"},
    "h6": {"font-weight": "bold"},
    "dt": {"font-weight": "bold"},
    "i": {"font-style": "italic"},
    "em": {"font-style": "italic"},
    "cite": {"font-style": "italic"},
    "blockquote": {"font-style": "italic"},
    "u": {"text-decoration": "underline"},
    "center": {"text-align": "center"},
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
@dataclass
class _Open:
    tag: str
    style: _Style


class _SlideParser(HTMLParser):
    def __init__(self, rules: list[_Rule]) -> None:
        super().__init__(convert_charrefs=True)
        self.rules = sorted(rules, key=lambda rule: (rule.specificity, rule.order))
        self.stack: list[_Open] = [_Open("#root", _Style())]
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

    # style --------------------------------------------------------------------------------------
    def _style_for(self, tag: str, attrs: dict[str, str | None]) -> _Style:
        style = self.stack[-1].style
        if tag in _TAG_STYLE:
            style = style.apply(_TAG_STYLE[tag])
        classes = set((attrs.get("class") or "").split())
        element_id = attrs.get("id")
        for rule in self.rules:
            if rule.matches(tag, element_id, classes):
                style = style.apply(rule.declarations)
        if attrs.get("style"):
            style = style.apply(declarations(attrs["style"] or ""))
        if tag == "a":
            href = (attrs.get("href") or "").strip()
            if href.lower().startswith("javascript:"):
                self.left_out.append("script links")
            style = replace(style, link=href if _SAFE_LINK.match(href) else None, underline=True)
            if style.color is None and _SAFE_LINK.match(href):
                style = replace(style, color="0563C1")
        return style

    # blocks -------------------------------------------------------------------------------------
    def _context(self) -> tuple[str, int]:
        for open_tag in reversed(self.stack):
            tag = open_tag.tag
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                return "h", int(tag[1])
            if tag == "li":
                return "li", max(len(self.lists) - 1, 0)
            if tag == "blockquote":
                return "quote", 0
            if tag == "pre":
                return "pre", 0
        return "p", 0

    def _align(self) -> Align | None:
        return self.stack[-1].style.align

    def flush(self) -> None:
        if self.cell is not None:
            return  # a cell gathers everything inside it
        runs = _trim(self.runs)
        self.runs = []
        if not runs:
            return
        kind, level = self._context()
        marker = ""
        if kind == "li" and not self.item_started and self.lists:
            ordered, counter = self.lists[-1]
            marker = f"{counter}." if ordered else "•"
            self.item_started = True
        self.blocks.append(Para(kind, runs, level, marker, self._align()))  # type: ignore[arg-type]

    def _close_to(self, tags: set[str], stop: set[str]) -> None:
        """Implicitly close an open `tags` element (HTML's optional end tags), not past any `stop` element."""
        for index in range(len(self.stack) - 1, 0, -1):
            tag = self.stack[index].tag
            if tag in stop:
                return
            if tag in tags:
                while len(self.stack) > index:
                    self._end(self.stack[-1].tag)
                return

    # parser callbacks ---------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
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
        self.stack.append(_Open(tag, style))
        if tag in ("ul", "ol"):
            start = attrs.get("start")
            self.lists.append([tag == "ol", int(start) - 1 if start and start.isdigit() else 0])
        elif tag == "li":
            if self.lists:
                self.lists[-1][1] += 1
            self.item_started = False
        elif tag == "table":
            if self.cell is not None:  # a table inside a cell becomes that cell's text
                self.stack[-1] = _Open("#inner-table", style)
                return
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
        if not any(open_tag.tag == tag for open_tag in self.stack[1:]) and not (
            tag == "table" and any(open_tag.tag == "#inner-table" for open_tag in self.stack)
        ):
            return  # a stray end tag
        while len(self.stack) > 1:
            top = self.stack[-1].tag
            self._end(top)
            if top == tag or (tag == "table" and top == "#inner-table"):
                break

    def _end(self, tag: str) -> None:
        if tag in _BLOCKS or tag == "#inner-table":
            self.flush()
            if self.cell is not None and (tag not in ("td", "th") or self._inner_table()):
                self.cell.append(Run(" "))  # blocks inside a cell run on, separated
        self.stack.pop()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.item_started = True
        elif tag in ("td", "th") and self.cell is not None and self.row is not None and not self._inner_table():
            self.row.append(Cell(_trim(self.cell), self.cell_header, self.cell_align))
            self.cell = None
        elif tag == "table":
            rows = [row for row in self.rows or [] if row]
            self.rows, self.row = self.table_stack.pop() if self.table_stack else (None, None)
            if rows:
                self.blocks.append(Table(rows))

    def _inner_table(self) -> bool:
        return any(open_tag.tag == "#inner-table" for open_tag in self.stack)

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.doc_title:
            self.doc_title = " ".join(data.split())
        if self.skip_depth:
            return
        style = self.stack[-1].style
        in_pre = any(open_tag.tag == "pre" for open_tag in self.stack)
        if in_pre and self.cell is None:
            lines = data.split("\n")
            for number, line in enumerate(lines):
                if number:
                    self.flush()
                if line:
                    self.runs.append(_run(line, style))
            return
        text = re.sub(r"\s+", " ", data)
        if not text:
            return
        (self.cell if self.cell is not None else self.runs).append(_run(text, style))

    def _image(self, attrs: dict[str, str | None]) -> None:
        src = (attrs.get("src") or "").strip()
        alt = " ".join((attrs.get("alt") or "").split())
        found = picture(src, alt) if src.lower().startswith("data:") else None
        if found is None:
            self.left_out.append(
                "images that are not inline data: URIs (never fetched)"
                if not src.lower().startswith("data:")
                else "an image that could not be decoded"
            )
            if alt:
                target = self.cell if self.cell is not None else self.runs
                target.append(Run(f"[image: {alt}]", italic=True))
            return
        if self.cell is not None:
            self.cell.append(Run(f"[image: {alt or 'picture'}]", italic=True))
            return
        self.blocks.append(found)


def _run(text: str, style: _Style) -> Run:
    return Run(text, style.bold, style.italic, style.underline, style.link, style.color)


def _trim(runs: list[Run]) -> list[Run]:
    """Collapse what HTML collapses: spaces at the edges of a block and doubled between runs."""
    merged: list[Run] = []
    for run in runs:
        text = run.text
        if merged and merged[-1].text.endswith((" ", "\n")) and text.startswith(" "):
            text = text.lstrip(" ")
        if not text:
            continue
        if merged and _same_style(merged[-1], run):
            merged[-1] = replace(merged[-1], text=merged[-1].text + text)
        else:
            merged.append(replace(run, text=text))
    while merged and not merged[0].text.strip():
        merged.pop(0)
    while merged and not merged[-1].text.strip():
        merged.pop()
    if merged:
        merged[0] = replace(merged[0], text=merged[0].text.lstrip())
        merged[-1] = replace(merged[-1], text=merged[-1].text.rstrip())
    return merged


def _same_style(a: Run, b: Run) -> bool:
    return (a.bold, a.italic, a.underline, a.link, a.color) == (b.bold, b.italic, b.underline, b.link, b.color)


def _take_title(blocks: list[Block], fallback: str) -> tuple[str, list[Block]]:
    """The slide's title: its first h1, else its first heading, else its <title>; taken out of the body."""
    headings = [block for block in blocks if isinstance(block, Para) and block.kind == "h"]
    if headings:
        first = min(headings, key=lambda block: block.level)
        first = next(block for block in headings if block.level == first.level)
        return first.text.strip(), [block for block in blocks if block is not first]
    return fallback, blocks


def parse_slide(slide_id: str, number: int, markup: str, deck_css: str = "") -> SlideModel:
    """The slide's model; raises on nothing but a bug (callers fall back to `plain_text_slide`)."""
    inline_css = "\n".join(re.findall(r"<style[^>]*>(.*?)</style\s*>", markup, flags=re.DOTALL | re.IGNORECASE))
    rules = stylesheet(deck_css) + stylesheet(inline_css, start=100_000)
    parser = _SlideParser(rules)
    parser.feed(markup)
    parser.close()
    while len(parser.stack) > 1:
        parser._end(parser.stack[-1].tag)
    parser.flush()
    title, blocks = _take_title(parser.blocks, parser.doc_title)
    return SlideModel(slide_id, number, title, blocks, list(dict.fromkeys(parser.left_out)))


def plain_text(markup: str) -> str:
    without = re.sub(r"<(script|style|template)[^>]*>.*?</\1\s*>", " ", markup, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", without)).split())


def plain_text_slide(slide_id: str, number: int, markup: str) -> SlideModel:
    text = plain_text(markup)
    blocks: list[Block] = [Para("p", [Run(text)])] if text else []
    return SlideModel(slide_id, number, "", blocks, ["formatting (the HTML could not be parsed)"], plain_text=True)


def parse_deck(deck: dict[str, Any]) -> list[SlideModel]:
    """Every slide parsed once; one that cannot be parsed becomes its plain text and sinks nothing else."""
    css = deck.get("css") or ""
    models = []
    for number, slide in enumerate(deck.get("slides") or [], start=1):
        try:
            models.append(parse_slide(slide["slide_id"], number, slide["html"], css))
        except Exception:
            models.append(plain_text_slide(slide["slide_id"], number, slide["html"]))
    return models
