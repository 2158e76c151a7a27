"""A measure's outcome and how the whole run becomes `results.md`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
PLOTS = HERE / "plots"
RAW = HERE / "out"


@dataclass
class Target:
    name: str
    met: bool | None  # None: not measurable in this run
    detail: str


@dataclass
class Section:
    key: str
    title: str
    body: list[str] = field(default_factory=list)  # markdown blocks
    summary: list[tuple[str, str, str]] = field(default_factory=list)  # (figure, ours, alternative)
    targets: list[Target] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # what could not be measured, and why
    plots: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(self, *blocks: str) -> None:
        self.body.extend(blocks)

    def gap(self, text: str) -> None:
        self.gaps.append(text)

    def target(self, name: str, met: bool | None, detail: str) -> None:
        self.targets.append(Target(name, met, detail))


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def summary_table(sections: list[Section]) -> str:
    rows = [[figure, ours, other] for section in sections for figure, ours, other in section.summary]
    return table(["figure", "ours", "alternative"], rows)


def render(sections: list[Section], *, started: str, seconds: float, environment: str) -> str:
    out = [
        "# Benchmarks",
        "",
        f"`make bench` on {started} ({environment}); the whole run took {seconds:,.0f} s.",
        "Counts (requests, items, bytes) are exact. Times come from one shared 2-core machine: read them as",
        "ratios measured in the same run (medians over repeated runs), never as absolute promises.",
        "",
        "## Summary",
        "",
        summary_table(sections),
        "",
        "## Targets",
        "",
        table(
            ["target", "result", "detail"],
            [[t.name, _mark(t.met), t.detail] for section in sections for t in section.targets],
        ),
        "",
    ]
    gaps = [(section.title, gap) for section in sections for gap in section.gaps]
    failures = [section for section in sections if section.error]
    if gaps or failures:
        out += ["## Missing figures", ""]
        out += [f"- **{title}**: {gap}" for title, gap in gaps]
        out += [f"- **{section.title}** failed: `{section.error}`" for section in failures]
        out.append("")
    for number, section in enumerate(sections, 1):
        out += [f"## {number}. {section.title}", ""]
        if section.error:
            out += [f"The measure failed after {section.seconds:.0f} s: `{section.error}`", ""]
        for block in section.body:
            out += [block, ""]
        for plot in section.plots:
            out += [f"![{plot.stem}]({plot.relative_to(HERE).as_posix()})", ""]
        out += [f"<sub>measured in {section.seconds:.1f} s</sub>", ""]
    return "\n".join(out).rstrip() + "\n"
