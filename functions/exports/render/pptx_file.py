"""PPTX with python-pptx: 16:9, one slide per slide, the title in the title placeholder, fitted text,
native tables and pictures, and the slide id (and whatever was left out) in the notes."""

from __future__ import annotations

import io
from typing import Any

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import MSO_ANCHOR, MSO_AUTO_SIZE, PP_ALIGN
from pptx.oxml.ns import qn
from pptx.util import Pt

from render import layout
from render.model import Document, Para, Run, SlideModel
from render.parse import plain_text_slide

_ALIGN = {"left": PP_ALIGN.LEFT, "center": PP_ALIGN.CENTER, "right": PP_ALIGN.RIGHT, "justify": PP_ALIGN.JUSTIFY}
_TITLE_ONLY_LAYOUT = 5
OVERFLOW_NOTE = "The text of this slide is longer than a slide holds; it is set at the smallest size."


def render(document: Document, originals: dict[str, str]) -> bytes:
    presentation = Presentation()
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
    if laid.title and title is not None:
        _place(title, layout.TITLE_BOX)
        frame = title.text_frame
        frame.word_wrap = True
        frame.vertical_anchor = MSO_ANCHOR.MIDDLE
        paragraph = frame.paragraphs[0]
        paragraph.alignment = PP_ALIGN.LEFT
        run = paragraph.add_run()
        run.text = laid.title
        run.font.size = Pt(laid.title_size)
        run.font.bold = True
    elif title is not None:
        title._element.getparent().remove(title._element)  # no empty "Click to add title" box
    if laid.text is not None:
        _text_box(slide, laid.text)
    for visual in laid.visuals:
        if isinstance(visual, layout.TableBox):
            _table(slide, visual)
        else:
            box = visual.box
            slide.shapes.add_picture(io.BytesIO(visual.picture.data), Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h))
    notes = model.notes(deck_has_scripts)
    if laid.overflow:
        notes.append(OVERFLOW_NOTE)
    return notes


def _place(shape: Any, box: layout.Box) -> None:
    shape.left, shape.top, shape.width, shape.height = Pt(box.x), Pt(box.y), Pt(box.w), Pt(box.h)


def _text_box(slide: Any, text: layout.TextBox) -> None:
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
            _run(paragraph, run, laid.size, bold=para.kind == "h")


def _bullet(p_pr: Any, marker: str) -> Any:
    if not marker:
        return p_pr.makeelement(qn("a:buNone"), {})
    if marker.endswith("."):
        return p_pr.makeelement(qn("a:buAutoNum"), {"type": "arabicPeriod", "startAt": marker[:-1]})
    return p_pr.makeelement(qn("a:buChar"), {"char": marker})


def _run(paragraph: Any, run: Run, size: float, *, bold: bool = False) -> None:
    text = run.text.replace("\n", " ")
    if not text:
        return
    added = paragraph.add_run()
    added.text = text
    font = added.font
    font.size = Pt(size)
    font.bold = run.bold or bold or None
    font.italic = run.italic or None
    font.underline = run.underline or None
    if run.color:
        font.color.rgb = RGBColor.from_string(run.color)
    if run.link:
        added.hyperlink.address = run.link


def _table(slide: Any, laid: layout.TableBox) -> None:
    table = laid.table
    rows, columns = len(table.rows), max(table.columns, 1)
    box = laid.box
    height = min(sum(laid.row_heights), box.h)
    shape = slide.shapes.add_table(rows, columns, Pt(box.x), Pt(box.y), Pt(box.w), Pt(height))
    grid = shape.table
    grid.first_row = table.has_header
    for index, width in enumerate(laid.col_widths):
        grid.columns[index].width = Pt(width)
    for index, row_height in enumerate(laid.row_heights):
        grid.rows[index].height = Pt(row_height)
    for r, row in enumerate(table.rows):
        for c in range(columns):
            cell = grid.cell(r, c)
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
                    _run(paragraph, run, laid.size, bold=source.header)


def _split_lines(runs: list[Run]) -> list[list[Run]]:
    lines: list[list[Run]] = [[]]
    for run in runs:
        for number, part in enumerate(run.text.split("\n")):
            if number:
                lines.append([])
            if part:
                lines[-1].append(Run(part, run.bold, run.italic, run.underline, run.link, run.color))
    return lines


def _clear(slide: Any) -> None:
    for shape in list(slide.shapes):
        shape._element.getparent().remove(shape._element)
