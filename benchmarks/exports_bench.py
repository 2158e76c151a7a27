"""7. Exports: time and peak memory per format for 10, 50 and 100-slide decks.

The exports engineer's benchmarks/exports.py does the measuring; this only runs it inside `make bench`
and puts its figures in results.md.
"""

from __future__ import annotations

import importlib.util

from benchmarks.report import HERE, Section, table

REPEAT = 1  # the best of N; one keeps `make bench` inside its time budget (exports.py defaults to 3)


def run(section: Section) -> None:
    if importlib.util.find_spec("benchmarks.exports") is None or not (HERE / "exports.py").exists():
        section.gap("benchmarks/exports.py (the exports engineer's) does not exist yet")
        return
    from benchmarks import exports

    for export_format in exports.FORMATS:  # imports and font loading belong to the cold start
        exports.render.render(export_format, exports.source(1))
    rows, data = [], {}
    for export_format in exports.FORMATS:
        for slides in exports.SIZES:
            seconds, peak, size = exports.measure(export_format, slides, REPEAT)
            data[f"{export_format}/{slides}"] = {"seconds": seconds, "peak_mib": peak, "bytes": size}
            rows.append([export_format, slides, f"{seconds:.2f}", f"{peak:.1f}", f"{size / 1024:,.0f}"])
    section.data = data
    section.add(
        f"From benchmarks/exports.py (in-process render, best of {REPEAT}; peak is Python allocations under "
        "tracemalloc).",
        table(["format", "slides", "time s", "peak MiB", "file KiB"], rows),
    )
    worst = max(data.items(), key=lambda item: item[1]["seconds"])
    section.summary.append(
        (
            "Export, slowest format at 100 slides",
            f"{worst[0]}: {worst[1]['seconds']:.1f} s, {worst[1]['peak_mib']:.0f} MiB peak",
            "—",
        )
    )
