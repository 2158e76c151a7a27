"""PPTX with python-pptx: 16:9, one slide per slide, the title in the title placeholder, fitted text,
native tables and pictures, and the slide id (and whatever was left out) in the notes."""

from __future__ import annotations

import io
import itertools
from typing import IO, Any

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import MSO_ANCHOR, MSO_AUTO_SIZE, PP_ALIGN
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.opc.packuri import PackURI
from pptx.oxml.ns import qn
from pptx.parts.image import Image, ImagePart
from pptx.text.text import _Run
from pptx.util import Emu, Pt

from render import layout
from render.model import Document, Para, Run, SlideModel
from render.parse import plain_text_slide

_ALIGN = {"left": PP_ALIGN.LEFT, "center": PP_ALIGN.CENTER, "right": PP_ALIGN.RIGHT, "justify": PP_ALIGN.JUSTIFY}
_TITLE_ONLY_LAYOUT = 5
_END_MARK = qn("a:endParaRPr")
OVERFLOW_NOTE = "The text of this slide is longer than a slide holds; it is set at the smallest size."


def render(document: Document, originals: dict[str, str]) -> bytes:
    presentation = Presentation()
    _PartIndex(presentation.part.package)
    presentation.slide_width = Pt(layout.SLIDE_W)
    presentation.slide_height = Pt(layout.SLIDE_H)
    presentation.core_properties.title = document.title
    presentation.core_properties.author = "Sessions API"
    slides = document.slides or [
        SlideModel("none", 1, document.title, [Para("p", [Run("This session has no slides.")])])
    ]
    for model in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_TITLE_ONLY_LAYOUT])
        try:
            notes = _draw(slide, model, document.has_scripts)
        except Exception:
            _clear(slide)
            fallback = plain_text_slide(model.slide_id, model.number, originals.get(model.slide_id, ""))
            notes = _draw(slide, fallback, document.has_scripts, title_placeholder=False)
        slide.notes_slide.notes_text_frame.text = "\n".join(notes)
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def _draw(slide: Any, model: SlideModel, deck_has_scripts: bool, *, title_placeholder: bool = True) -> list[str]:
    laid = layout.lay_slide(model)
    title = slide.shapes.title if title_placeholder else None
    links = _Links(slide.part)
    if laid.title and title is not None:
        _place(title, layout.TITLE_BOX)
        frame = title.text_frame
        frame.word_wrap = True
        frame.vertical_anchor = MSO_ANCHOR.MIDDLE
        paragraph = frame.paragraphs[0]
        paragraph.alignment = _ALIGN[laid.title_align or "left"]
        for run in model.title_runs:  # styled as body runs are: the heading's CSS, not the layout's theme
            _run(paragraph, run, laid.title_size, links)
    elif title is not None:
        title._element.getparent().remove(title._element)  # no empty "Click to add title" box
    if laid.text is not None:
        _text_box(slide, laid.text, links)
    for visual in laid.visuals:
        if isinstance(visual, layout.TableBox):
            _table(slide, visual, links)
        else:
            _picture(slide, visual, links)
    notes = model.notes(deck_has_scripts)
    if laid.overflow:
        notes.append(OVERFLOW_NOTE)
    return notes


def _place(shape: Any, box: layout.Box) -> None:
    shape.left, shape.top, shape.width, shape.height = Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h)


def _text_box(slide: Any, text: layout.TextBox, links: _Links) -> None:
    box = text.box
    shape = slide.shapes.add_textbox(Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h))
    frame = shape.text_frame
    frame.word_wrap = True
    # Sizes are already fitted; the flag lets PowerPoint shrink further should its fonts run wider.
    frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    frame.margin_left = frame.margin_right = frame.margin_top = frame.margin_bottom = 0
    for index, laid in enumerate(text.paras):
        paragraph = frame.paragraphs[0] if index == 0 else frame.add_paragraph()
        para = laid.para
        paragraph.space_after = Pt(laid.space_after)
        if para.align:
            paragraph.alignment = _ALIGN[para.align]
        if laid.indent:
            p_pr = paragraph._p.get_or_add_pPr()
            p_pr.set("marL", str(int(Pt(laid.indent))))
            if para.kind == "li":
                p_pr.set("indent", str(-int(Pt(layout.INDENT * text.scale))))
                p_pr.append(_bullet(p_pr, para.marker))
        for run in para.runs:
            _run(paragraph, run, laid.size, links, bold=para.kind == "h")


def _bullet(p_pr: Any, marker: str) -> Any:
    if not marker:
        return p_pr.makeelement(qn("a:buNone"), {})
    if marker.endswith("."):
        return p_pr.makeelement(qn("a:buAutoNum"), {"type": "arabicPeriod", "startAt": marker[:-1]})
    return p_pr.makeelement(qn("a:buChar"), {"char": marker})


def _run(paragraph: Any, run: Run, size: float, links: _Links, *, bold: bool = False) -> None:
    text = run.text.replace("\n", " ")
    if not text:
        return
    added = _new_run(paragraph)
    added.text = text
    font = added.font
    font.size = Pt(size)
    if run.bold or bold:  # what is not set stays unset: a fresh run has no bold, italic or underline
        font.bold = True
    if run.italic:
        font.italic = True
    if run.underline:
        font.underline = True
    if run.color:
        font.color.rgb = RGBColor.from_string(run.color)
    if run.link:
        added._r.get_or_add_rPr().add_hlinkClick(links.relation(run.link))


class _Links:
    """A slide's hyperlinks, one relationship per address: python-pptx searches every relationship of the slide
    for each link it adds, quadratic in links."""

    def __init__(self, part: Any) -> None:
        self._part = part
        self._relations: dict[str, str] = {}

    def relation(self, url: str) -> str:
        if url not in self._relations:
            self._relations[url] = self._part.rels._add_relationship(RT.HYPERLINK, url, is_external=True)
        return self._relations[url]


def _new_run(paragraph: Any) -> _Run:
    """A run at the end of the paragraph, before its end mark if it has one (always its last child): python-pptx's
    `add_run` scans the paragraph for that mark, quadratic in runs."""
    p = paragraph._p
    r = p._new_r()
    last = next(p.iterchildren(reversed=True), None)  # as `len(p)`, `p.find()` walks every child
    if last is not None and last.tag == _END_MARK:
        last.addprevious(r)
    else:
        p.append(r)
    return _Run(r, paragraph)


def _table(slide: Any, laid: layout.TableBox, links: _Links) -> None:
    table = laid.table
    columns = max(table.columns, 1)
    box = laid.box
    widths = [Pt(width) for width in laid.col_widths]
    heights = [Pt(height) for height in laid.row_heights]
    shape = slide.shapes.add_table(len(table.rows), columns, Pt(box.x), Pt(box.y), Emu(sum(widths)), Emu(sum(heights)))
    grid = shape.table
    grid.first_row = table.has_header
    # Sized in the XML: python-pptx re-sums every row (or column) on each one resized, cubic in rows.
    for grid_column, width in zip(grid._tbl.tblGrid.gridCol_lst, widths, strict=True):
        grid_column.w = width
    for grid_row, height in zip(grid._tbl.tr_lst, heights, strict=True):
        grid_row.h = height
    cells = grid.iter_cells()  # in order, where `grid.cell(r, c)` lists every row to reach one
    for row in table.rows:
        for c in range(columns):
            cell = next(cells)
            cell.margin_left = cell.margin_right = cell.margin_top = cell.margin_bottom = Pt(layout.CELL_PAD)
            frame = cell.text_frame
            frame.word_wrap = True
            if c >= len(row):
                continue
            source = row[c]
            lines = _split_lines(source.runs)
            for index, runs in enumerate(lines):
                paragraph = frame.paragraphs[0] if index == 0 else frame.add_paragraph()
                if source.align:
                    paragraph.alignment = _ALIGN[source.align]
                for run in runs:
                    _run(paragraph, run, laid.size, links, bold=source.header)


def _picture(slide: Any, laid: layout.PictureBox, links: _Links) -> None:
    box = laid.box
    try:
        slide.shapes.add_picture(io.BytesIO(laid.picture.data), Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h))
    except Exception:  # an image python-pptx cannot read (though Pillow could) costs only itself
        frame = slide.shapes.add_textbox(Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h)).text_frame
        frame.word_wrap = True
        _run(frame.paragraphs[0], laid.picture.stand_in, layout.BASE_SIZE["p"], links)


def _split_lines(runs: list[Run]) -> list[list[Run]]:
    lines: list[list[Run]] = [[]]
    for run in runs:
        for number, part in enumerate(run.text.split("\n")):
            if number:
                lines.append([])
            if part:
                lines[-1].append(Run(part, run.bold, run.italic, run.underline, run.link, run.color))
    return lines


class _PartIndex:
    """python-pptx walks every part of the package to name a new one (a slide's notes, an image) and to find an
    image it already holds, quadratic in slides and images: this index does both from what it has seen."""

    def __init__(self, package: Any) -> None:
        self._package = package
        self._names = {str(part.partname) for part in package.iter_parts()}
        self._numbers: dict[str, itertools.count[int]] = {}
        self._images: dict[str, ImagePart] = {}
        package.next_partname = self.next_partname
        package.get_or_add_image_part = self.image_part

    def next_partname(self, template: str) -> PackURI:
        numbers = self._numbers.setdefault(template, itertools.count(1))
        name = next(template % number for number in numbers if template % number not in self._names)
        self._names.add(name)
        return PackURI(name)

    def image_part(self, image_file: IO[bytes]) -> ImagePart:
        image = Image.from_file(image_file)
        if image.sha1 not in self._images:
            name = self.next_partname(f"/ppt/media/image%d.{image.ext}")
            self._images[image.sha1] = ImagePart(name, image.content_type, self._package, image.blob, image.filename)
        return self._images[image.sha1]


def _clear(slide: Any) -> None:
    for shape in list(slide.shapes):
        shape._element.getparent().remove(shape._element)
