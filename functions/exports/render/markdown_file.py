"""Markdown: the conversation transcript (message contents as written), then each slide's content."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

from render import text
from render.model import Document, Para, Picture, Run, SlideModel, Table

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def escape(value: str) -> str:
    return _SPECIAL.sub(r"\\\1", value)


def render(document: Document, originals: dict[str, str]) -> bytes:
    lines = [f"# {escape(document.title)}", "", f"_{escape(text.summary_line(document))}_", "", "## Conversation", ""]
    if not document.messages:
        lines += ["_No messages._", ""]
    for message in document.messages:
        lines += [
            f"**{text.role_label(message)}** · {message.get('created_at', '')}",
            "",
            str(message.get("content", "")),
            "",
        ]
    if document.messages_truncated:
        lines += [f"_{text.TRUNCATED_NOTE}_", ""]
    lines += ["## Slides", ""]
    if not document.slides:
        lines += ["_This session has no slides._", ""]
    for slide in document.slides:
        lines += _slide(slide, document.has_scripts)
    return ("\n".join(lines).rstrip() + "\n").encode()


def _slide(slide: SlideModel, deck_has_scripts: bool) -> list[str]:
    lines = [f"### {escape(text.slide_heading(slide))}", ""]
    previous: str | None = None
    for block in slide.blocks:
        kind = block.kind if isinstance(block, Para) else type(block).__name__
        if previous == "li" and kind != "li":
            lines.append("")
        if isinstance(block, Para):
            lines += _para(block)
        elif isinstance(block, Table):
            lines += [*_table(block), ""]
        elif isinstance(block, Picture):
            data = base64.b64encode(block.data).decode()
            lines += [f"![{escape(block.alt)}](data:image/{block.extension};base64,{data})", ""]
        previous = kind
    if previous == "li":
        lines.append("")
    lines += ["> " + escape(" ".join(slide.notes(deck_has_scripts))), ""]
    return lines


def inline(runs: list[Run]) -> str:
    out = []
    for run in runs:
        value = escape(run.text).replace("\n", "  \n")
        core = value.strip()
        if core:
            if run.bold and run.italic:
                core = f"***{core}***"
            elif run.bold:
                core = f"**{core}**"
            elif run.italic:
                core = f"*{core}*"
            if run.link:
                core = f"[{core}]({run.link.replace(')', '%29').replace(' ', '%20')})"
            lead = value[: len(value) - len(value.lstrip())]
            trail = value[len(value.rstrip()) :]
            value = lead + core + trail
        out.append(value)
    return "".join(out)


def _para(para: Para) -> list[str]:
    body = inline(para.runs)
    if para.kind == "h":
        return [f"{'#' * min(para.level + 3, 6)} {body}", ""]
    if para.kind == "li":
        indent = "   " * para.level
        marker = para.marker if para.marker.endswith(".") else "-"
        return [f"{indent}{marker} {body}" if para.marker else f"{indent}   {body}"]
    if para.kind == "quote":
        return [f"> {body}", ""]
    if para.kind == "pre":
        return ["    " + "".join(run.text for run in para.runs)]
    return [body, ""]


def _table(table: Table) -> list[str]:
    columns = max(table.columns, 1)

    def row(cells: list[str]) -> str:
        cells = cells + [""] * (columns - len(cells))
        return "| " + " | ".join(cell.replace("\n", " ") for cell in cells) + " |"

    # A header row is bold by itself: its cells' own bold would only add asterisks.
    rows = [
        [inline([replace(run, bold=run.bold and not cell.header) for run in cell.runs]) for cell in cells]
        for cells in table.rows
    ]
    header = rows[0] if table.has_header else [""] * columns
    body = rows[1:] if table.has_header else rows
    return [row(header), "|" + "---|" * columns, *(row(cells) for cells in body)]
