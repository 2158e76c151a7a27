"""DOCX with python-docx: the conversation transcript, then each slide's content."""

from __future__ import annotations

import io
import itertools
from typing import Any

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.image.image import Image as DocxImage
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.opc.packuri import PackURI
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.shape import CT_Inline
from docx.oxml.table import CT_Tbl
from docx.parts.image import ImagePart
from docx.shared import Inches, Pt, RGBColor
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph

from render import text
from render.model import Document, Para, Picture, Run, SlideModel, Table

_ALIGN = {
    "left": WD_ALIGN_PARAGRAPH.LEFT,
    "center": WD_ALIGN_PARAGRAPH.CENTER,
    "right": WD_ALIGN_PARAGRAPH.RIGHT,
    "justify": WD_ALIGN_PARAGRAPH.JUSTIFY,
}
_GREY = RGBColor(0x80, 0x80, 0x80)
_MAX_PICTURE_INCHES = 6.0


def render(document: Document, originals: dict[str, str]) -> bytes:
    out = docx.Document()
    out.core_properties.title = document.title
    out.core_properties.author = "Sessions API"
    writer = _Writer(out)
    writer.paragraph("Title", document.title)
    _note(writer.paragraph(), text.summary_line(document))

    writer.paragraph("Heading 1", "Conversation")
    if not document.messages:
        _note(writer.paragraph(), "No messages.")
    for message in document.messages:
        heading = writer.paragraph()
        heading.add_run(text.role_label(message)).bold = True
        _note(heading, "  " + str(message.get("created_at", "")))
        writer.paragraph(text=str(message.get("content", "")))
    if document.messages_truncated:
        _note(writer.paragraph(), text.TRUNCATED_NOTE)

    writer.paragraph("Heading 1", "Slides")
    if not document.slides:
        _note(writer.paragraph(), "This session has no slides.")
    for slide in document.slides:
        _slide(writer, slide, document.has_scripts)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def _slide(writer: _Writer, slide: SlideModel, deck_has_scripts: bool) -> None:
    writer.paragraph("Heading 2", text.slide_heading(slide))
    for block in slide.blocks:
        if isinstance(block, Para):
            _para(writer, block)
        elif isinstance(block, Table):
            _table(writer, block)
        elif isinstance(block, Picture):
            _picture(writer, block)
    _note(writer.paragraph(), " ".join(slide.notes(deck_has_scripts)))


class _Writer:
    """Adds to the document in constant time where python-docx scans what it holds, quadratic in what is added:
    the whole body for its end on each paragraph or table, every relationship and image on each picture or
    link, the whole document for the next picture id. It keeps style ids too: a lookup by name costs milliseconds."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._style_ids: dict[str, str] = {}
        self._end = out.element.body.sectPr  # the section properties stay last: every block goes before them
        self._table_width = out._block_width
        self._picture_ids = itertools.count(out.part.next_id)
        self._links: dict[str, str] = {}  # relationship ids by address
        self._images: dict[str, str] = {}  # relationship ids by the image's SHA-1
        self._relation_numbers = itertools.count(1)
        self._image_numbers = itertools.count(len(list(out.part.package.image_parts)) + 1)

    def style_id(self, name: str) -> str:
        if name not in self._style_ids:
            self._style_ids[name] = self.out.styles[name].style_id
        return self._style_ids[name]

    def paragraph(self, style_name: str | None = None, text: str = "") -> Paragraph:
        paragraph = Paragraph(self._add(OxmlElement("w:p")), self.out)
        if text:
            paragraph.add_run(text)
        if style_name:
            paragraph._p.style = self.style_id(style_name)
        return paragraph

    def table(self, rows: int, columns: int) -> DocxTable:
        return DocxTable(self._add(CT_Tbl.new_tbl(rows, columns, self._table_width)), self.out)

    def picture(self, paragraph: Paragraph, data: bytes, width: int) -> None:
        """As python-docx's `add_picture`; raises whatever its image reader raises."""
        image = DocxImage.from_blob(data)
        if image.sha1 not in self._images:
            part = ImagePart.from_image(image, PackURI(f"/word/media/image{next(self._image_numbers)}.{image.ext}"))
            self._images[image.sha1] = self._relate(RELATIONSHIP_TYPE.IMAGE, part, is_external=False)
        cx, cy = image.scaled_dimensions(width, None)
        inline = CT_Inline.new_pic_inline(next(self._picture_ids), self._images[image.sha1], image.filename, cx, cy)
        paragraph.add_run()._r.add_drawing(inline)

    def link(self, url: str) -> str:
        """The relationship id of a hyperlink to `url`, one per address."""
        if url not in self._links:
            self._links[url] = self._relate(RELATIONSHIP_TYPE.HYPERLINK, url, is_external=True)
        return self._links[url]

    def _relate(self, kind: str, target: Any, *, is_external: bool) -> str:
        relations = self.out.part.rels
        free = next(f"rId{n}" for n in self._relation_numbers if f"rId{n}" not in relations)
        return relations.add_relationship(kind, target, free, is_external=is_external).rId

    def _add(self, element: Any) -> Any:
        self._end.addprevious(element)
        return element


def _para(writer: _Writer, para: Para) -> None:
    style = None
    if para.kind == "h":
        style = f"Heading {min(para.level + 2, 9)}"
    elif para.kind == "li":
        kind = "List Number" if para.marker.endswith(".") else "List Bullet"
        style = kind if para.level == 0 else f"{kind} {min(para.level, 2) + 1}"
    elif para.kind == "quote":
        style = "Quote"
    paragraph = writer.paragraph(style)
    if para.align:
        paragraph.alignment = _ALIGN[para.align]
    for run in para.runs:
        _run(writer, paragraph, run, monospace=para.kind == "pre")


def _run(writer: _Writer, paragraph: Paragraph, run: Run, *, bold: bool = False, monospace: bool = False) -> None:
    added = paragraph.add_run(run.text)
    if run.bold or bold:  # what is not set stays unset: a fresh run has no bold, italic or underline
        added.bold = True
    if run.italic:
        added.italic = True
    if run.underline:
        added.underline = True
    if monospace:
        added.font.name = "Courier New"
    if run.color:
        added.font.color.rgb = RGBColor.from_string(run.color)
    if run.link:
        link = OxmlElement("w:hyperlink")
        link.set(qn("r:id"), writer.link(run.link))
        added._r.addprevious(link)
        link.append(added._r)


def _table(writer: _Writer, table: Table) -> None:
    grid = writer.table(len(table.rows), max(table.columns, 1))
    grid._tbl.tblPr.style = writer.style_id("Table Grid")
    # Row by row: `grid.cell(r, c)` lists every cell of the table to reach one, quadratic in cells.
    for grid_row, row in zip(grid.rows, table.rows, strict=True):
        for grid_cell, cell in zip(grid_row.cells, row, strict=False):
            paragraph = grid_cell.paragraphs[0]
            if cell.align:
                paragraph.alignment = _ALIGN[cell.align]
            for run in cell.runs:
                _run(writer, paragraph, run, bold=cell.header)
    writer.paragraph()


def _picture(writer: _Writer, picture: Picture) -> None:
    inches = min(_MAX_PICTURE_INCHES, picture.width_px / 96)
    paragraph = writer.paragraph()
    try:
        writer.picture(paragraph, picture.data, Inches(max(inches, 0.5)))
    except Exception:  # python-docx reads PNG and JPEG itself, stricter than Pillow: the picture costs only itself
        _run(writer, paragraph, picture.stand_in)
        return
    if picture.alt:
        _note(writer.paragraph(), picture.alt)


def _note(paragraph: Paragraph, line: str) -> None:
    run = paragraph.add_run(line)
    run.italic = True
    run.font.size = Pt(9)
    run.font.color.rgb = _GREY
