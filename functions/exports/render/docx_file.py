"""DOCX with python-docx: the conversation transcript, then each slide's content."""

from __future__ import annotations

import io
from typing import Any

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches, Pt, RGBColor
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
    out.add_heading(document.title, 0)
    _note(out.add_paragraph(), text.summary_line(document))

    out.add_heading("Conversation", 1)
    if not document.messages:
        _note(out.add_paragraph(), "No messages.")
    for message in document.messages:
        heading = out.add_paragraph()
        heading.add_run(text.role_label(message)).bold = True
        _note(heading, "  " + str(message.get("created_at", "")))
        out.add_paragraph(str(message.get("content", "")))
    if document.messages_truncated:
        _note(out.add_paragraph(), text.TRUNCATED_NOTE)

    out.add_heading("Slides", 1)
    if not document.slides:
        _note(out.add_paragraph(), "This session has no slides.")
    writer = _Writer(out)
    for slide in document.slides:
        _slide(writer, slide, document.has_scripts)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def _slide(writer: _Writer, slide: SlideModel, deck_has_scripts: bool) -> None:
    writer.paragraph("Heading 2").add_run(text.slide_heading(slide))
    for block in slide.blocks:
        if isinstance(block, Para):
            _para(writer, block)
        elif isinstance(block, Table):
            _table(writer, block)
        elif isinstance(block, Picture):
            _picture(writer, block)
    _note(writer.paragraph(), " ".join(slide.notes(deck_has_scripts)))


class _Writer:
    """The document and its style ids: python-docx's lookup of a style by name costs milliseconds each."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._ids: dict[str, str] = {}

    def style_id(self, name: str) -> str:
        if name not in self._ids:
            self._ids[name] = self.out.styles[name].style_id
        return self._ids[name]

    def paragraph(self, style_name: str | None = None) -> Paragraph:
        paragraph = self.out.add_paragraph()
        if style_name:
            paragraph._p.style = self.style_id(style_name)
        return paragraph


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
        _run(paragraph, run, monospace=para.kind == "pre")


def _run(paragraph: Paragraph, run: Run, *, bold: bool = False, monospace: bool = False) -> None:
    added = paragraph.add_run(run.text)
    added.bold = run.bold or bold or None
    added.italic = run.italic or None
    added.underline = run.underline or None
    if monospace:
        added.font.name = "Courier New"
    if run.color:
        added.font.color.rgb = RGBColor.from_string(run.color)
    if run.link:
        relation = paragraph.part.relate_to(run.link, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
        link = OxmlElement("w:hyperlink")
        link.set(qn("r:id"), relation)
        added._r.addprevious(link)
        link.append(added._r)


def _table(writer: _Writer, table: Table) -> None:
    grid = writer.out.add_table(rows=len(table.rows), cols=max(table.columns, 1))
    grid._tbl.tblPr.style = writer.style_id("Table Grid")
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row):
            paragraph = grid.cell(r, c).paragraphs[0]
            if cell.align:
                paragraph.alignment = _ALIGN[cell.align]
            for run in cell.runs:
                _run(paragraph, run, bold=cell.header)
    writer.paragraph()


def _picture(writer: _Writer, picture: Picture) -> None:
    inches = min(_MAX_PICTURE_INCHES, picture.width_px / 96)
    writer.out.add_picture(io.BytesIO(picture.data), width=Inches(max(inches, 0.5)))
    if picture.alt:
        _note(writer.paragraph(), picture.alt)


def _note(paragraph: Paragraph, line: str) -> None:
    run = paragraph.add_run(line)
    run.italic = True
    run.font.size = Pt(9)
    run.font.color.rgb = _GREY
