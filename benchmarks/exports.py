"""Export rendering: time and peak Python memory per format for decks of 10, 50 and 100 slides.

    python -m benchmarks.exports [--repeat N]

Renders in-process exactly what ExportsFunction renders (functions/exports/render), from a deck like an
assistant writes (headings, styled paragraphs, nested lists, a table, an inline image every fifth slide)
and a 60-message conversation. Time is the best of N runs without tracing; peak memory is measured in a
separate run under tracemalloc (Python allocations, which is what grows with the deck). Prints numbers;
never fails on them.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "exports"))

import render  # noqa: E402 - the exports function's own package, found through its code directory
from PIL import Image  # noqa: E402

FORMATS = ("pptx", "pdf", "docx", "markdown", "json")
SIZES = (10, 50, 100)


def _image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (40, 110, 190)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def deck(slides: int) -> dict[str, Any]:
    image = _image()
    made = []
    for number in range(1, slides + 1):
        html = (
            f"<h1>Slide {number}: results — Q{number % 4 + 1} résumé €</h1>"
            f"<p class='lead'>Revenue grew <b>{number} %</b> while <i>costs</i> stayed flat; see "
            f"<a href='https://example.com/{number}'>the report</a>.</p>"
            "<ul><li>Europe ≥ 5 %<ul><li>Nordics strongest</li><li>South steady</li></ul></li>"
            "<li>Americas — flat</li><li>Asia → rising</li></ul>"
            "<table><tr><th>Region</th><th>Q1</th><th>Q2</th></tr>"
            "<tr><td>EU</td><td>1.2</td><td>1.4</td></tr><tr><td>US</td><td>2.0</td><td>2.1</td></tr></table>"
        )
        if number % 5 == 0:
            html += f"<img src='{image}' alt='chart {number}'>"
        made.append({"slide_id": f"s{number}", "html": html})
    return {"slides": made, "css": ".lead { color: #1f3864 } h1 { color: navy }", "scripts": ["init()"]}


def source(slides: int) -> dict[str, Any]:
    messages = [
        {
            "message_id": f"msg_{index}",
            "role": "user" if index % 2 == 0 else "assistant",
            "content": ("Please make the slides about the quarter. " * 5) if index % 2 == 0 else "Done — " * 40,
            "created_at": "2026-01-15T10:30:00.000Z",
        }
        for index in range(60)
    ]
    return {
        "session": {"session_id": "session_0123456789abcdef", "title": "Benchmark deck", "status": "active"},
        "deck": deck(slides),
        "deck_version": 1,
        "messages": messages,
        "messages_truncated": False,
        "comments": [],
        "exported_at": "2026-01-15T10:30:00.000Z",
    }


def measure(export_format: str, slides: int, repeat: int) -> tuple[float, float, int]:
    data = source(slides)
    best = float("inf")
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(render.render(export_format, data))
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    render.render(export_format, data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exports", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (default 3; the best counts)")
    arguments = parser.parse_args(argv)
    for export_format in FORMATS:  # imports and font loading are the cold start's, not the export's
        render.render(export_format, source(1))
    print(f"{'format':<10}{'slides':>7}{'time s':>9}{'peak MiB':>10}{'file KiB':>10}")
    for export_format in FORMATS:
        for slides in SIZES:
            seconds, peak, size = measure(export_format, slides, arguments.repeat)
            print(f"{export_format:<10}{slides:>7}{seconds:>9.2f}{peak:>10.1f}{size / 1024:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
