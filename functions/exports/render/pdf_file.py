"""PDF with fpdf2 (pure Python, no system libraries): one 16:9 landscape page per slide, the same layout
as the PPTX, text in the bundled DejaVu Sans (embedded, subset), so accents, €, — and symbols survive."""

from __future__ import annotations

import io
import logging

from fpdf import FPDF

from render import layout
from render.model import Align, Document, Para, Run, SlideModel
from render.parse import plain_text_slide

FONT = "DejaVu"
_BLACK = "000000"
logging.getLogger("fontTools").setLevel(logging.ERROR)  # subsetting chatter, once per export


def _rgb(value: str | None) -> tuple[int, int, int]:
    value = value or _BLACK
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="landscape", unit="pt", format=(layout.SLIDE_H, layout.SLIDE_W))
        self.set_auto_page_break(False)
        self.set_margins(0, 0, 0)
        self._styles: set[str] = set()

    def use_font(self, style: str, size: float) -> None:
        if style not in self._styles:  # parsing a TTF costs ~0.1 s: only the styles a document uses
            self.add_font(FONT, style, str(layout.FONT_DIR / layout.FONT_FILES[style]))
            self._styles.add(style)
        self.set_font(FONT, style, size)

    def fragment(self, text: str, run: Run, x: float, baseline: float, size: float, *, bold: bool = False) -> float:
        self.use_font(layout.style_key(run.bold or bold, run.italic), size)
        self.set_text_color(*_rgb(run.color))
        clean = text.replace("\t", " ")
        self.text(x, baseline, clean)
        width = layout.text_width(clean, run.bold or bold, run.italic, size)
        if run.underline:
            self.set_draw_color(*_rgb(run.color))
            self.set_line_width(max(size * 0.05, 0.5))
            self.line(x, baseline + size * 0.12, x + width, baseline + size * 0.12)
        if run.link:
            self.link(x, baseline - size, width, size * layout.LINE_HEIGHT, run.link)
        return width


def render(document: Document, originals: dict[str, str]) -> bytes:
    pdf = _Pdf()
    pdf.set_title(document.title)
    pdf.set_creator("Sessions API")
    slides = document.slides or [
        SlideModel("none", 1, document.title, [Para("p", [Run("This session has no slides.")])])
    ]
    for model in slides:
        try:
            laid = layout.lay_slide(model)
        except Exception:
            model = plain_text_slide(model.slide_id, model.number, originals.get(model.slide_id, ""))
            laid = layout.lay_slide(model)
        pdf.add_page()
        _draw(pdf, model, laid, document.has_scripts)
    return bytes(pdf.output())


def _draw(pdf: _Pdf, model: SlideModel, laid: layout.SlideLayout, deck_has_scripts: bool) -> None:
    if laid.title:
        block_h = len(laid.title_lines) * laid.title_size * layout.LINE_HEIGHT
        top = layout.TITLE_BOX.y + (layout.TITLE_BOX.h - block_h) / 2
        for number, line in enumerate(laid.title_lines):
            baseline = top + number * laid.title_size * layout.LINE_HEIGHT + laid.title_size
            offset = layout.TITLE_BOX.x + _align_offset(laid.title_align, layout.TITLE_BOX.w, line)
            for fragment in line.fragments:
                pdf.fragment(fragment.text, fragment.run, offset + fragment.x, baseline, laid.title_size)
    clipped = False
    if laid.text is not None:
        clipped = _text(pdf, laid.text)
    for visual in laid.visuals:
        if isinstance(visual, layout.TableBox):
            clipped = _table(pdf, visual) or clipped
        else:
            _picture(pdf, visual)
    notes = model.notes(deck_has_scripts)[1:]  # the slide id is the page's own business in a PDF
    if clipped:
        notes.append("Some text did not fit on this page and is cut.")
    if notes:
        _wrapped(pdf, Run(" ".join(notes), italic=True, color="808080"), layout.NOTE_BOX, 7.0, line_height=9.0)


def _align_offset(align: Align | None, width: float, line: layout.Line) -> float:
    """Where a line starts in a column `width` wide (justified text is drawn flush left)."""
    if align == "center":
        return (width - line.width) / 2
    if align == "right":
        return width - line.width
    return 0.0


def _picture(pdf: _Pdf, laid: layout.PictureBox) -> None:
    box = laid.box
    try:
        pdf.image(io.BytesIO(laid.picture.data), x=box.x, y=box.y, w=box.w, h=box.h)
    except Exception:  # an image fpdf2 cannot read (though Pillow could) costs only itself
        size = layout.BASE_SIZE["p"]
        _wrapped(pdf, laid.picture.stand_in, box, size, line_height=size * layout.LINE_HEIGHT)


def _wrapped(pdf: _Pdf, run: Run, box: layout.Box, size: float, *, line_height: float) -> None:
    """`run` wrapped to the box's width, as many lines as its height holds (at least one)."""
    lines = layout.wrap([run], box.w, size, max_lines=max(int(box.h // line_height), 1))
    for number, line in enumerate(lines):
        for fragment in line.fragments:
            pdf.fragment(fragment.text, run, box.x + fragment.x, box.y + size + number * line_height, size)


def _text(pdf: _Pdf, text: layout.TextBox) -> bool:
    """Draw the paragraphs; True when some did not fit (only at the smallest size)."""
    box = text.box
    y = box.y
    for laid in text.paras:
        if not laid.lines:
            return True  # laid out past a full box
        para = laid.para
        width = box.w - laid.indent
        for number, line in enumerate(laid.lines):
            if y + laid.line_height > box.y + box.h + 0.5:
                return True
            baseline = y + laid.size
            offset = box.x + laid.indent + _align_offset(para.align, width, line)
            if number == 0 and para.marker:
                marker_run = para.runs[0] if para.runs else Run("")
                marker = Run(para.marker, color=marker_run.color)
                pdf.fragment(para.marker, marker, box.x + laid.indent - layout.INDENT * text.scale, baseline, laid.size)
            for fragment in line.fragments:
                pdf.fragment(fragment.text, fragment.run, offset + fragment.x, baseline, laid.size, bold=laid.bold)
            y += laid.line_height
        y += laid.space_after
    return False


def _table(pdf: _Pdf, laid: layout.TableBox) -> bool:
    box = laid.box
    y = box.y
    pdf.set_draw_color(160, 160, 160)
    pdf.set_line_width(0.6)
    for row, row_height, lines in zip(laid.table.rows, laid.row_heights, laid.cells, strict=True):
        if y + row_height > box.y + box.h + 0.5:
            return True
        x = box.x
        for index, width in enumerate(laid.col_widths):
            header = index < len(row) and row[index].header
            if header:
                pdf.set_fill_color(235, 238, 243)
            pdf.rect(x, y, width, row_height, style="DF" if header else "D")
            if index < len(row):
                cell = row[index]
                for number, line in enumerate(lines[index]):
                    offset = x + layout.CELL_PAD + _align_offset(cell.align, width - 2 * layout.CELL_PAD, line)
                    baseline = y + layout.CELL_PAD + number * laid.size * layout.LINE_HEIGHT + laid.size
                    for fragment in line.fragments:
                        pdf.fragment(fragment.text, fragment.run, offset + fragment.x, baseline, laid.size, bold=header)
            x += width
        pdf.set_draw_color(160, 160, 160)
        pdf.set_line_width(0.6)
        y += row_height
    return False
