"""Run every measure (or those named on the command line), each on its own, and write results.md."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

import benchmarks  # noqa: F401 - puts the layer on sys.path
from benchmarks import report

# (module, title): one module per measure, each with `run(section)`; order is the order of results.md.
MEASURES = [
    ("dynamodb_work", "DynamoDB work per endpoint"),
    ("partition_heat", "Partition heat at 100 k, 1 M and 10 M daily users"),
    ("append_cost", "Append cost against history length (vs LangChain DynamoDBChatMessageHistory)"),
    ("chat_runs", "Chat runs: work per run as the reply grows, and the first words"),
    ("listing", "Listing 50 sessions with counts and previews (vs FastAPI + SQLAlchemy)"),
    ("cold_start", "Cold start per function (vs FastAPI + Mangum, and the boto3 floor)"),
    ("warm_overhead", "Warm overhead per request (vs FastAPI + Mangum, DynamoDB stubbed for both)"),
    ("expiry", "Expiry and purge"),
    ("exports_bench", "Exports: time and peak memory per deck size"),
    ("erasure", "Erase everything (DELETE /me): the request, the worker (vs a table scan)"),
    ("takeout", "Export everything (POST /me/export): the request, the worker"),
    ("forks", "Fork of 10,000 messages: requests, time, peak memory"),
    ("package_size", "Package size (sam build) against Lambda's 250 MB"),
    ("gateway_load", "Local gateway under load (8 clients on loopback)"),
]


def main(argv: list[str]) -> int:
    wanted = set(argv)
    unknown = wanted - {name for name, _ in MEASURES}
    if unknown:
        print(f"unknown measure(s): {', '.join(sorted(unknown))}; known: {', '.join(n for n, _ in MEASURES)}")
        return 2
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    report.PLOTS.mkdir(exist_ok=True)
    report.RAW.mkdir(exist_ok=True)
    sections = []
    for name, title in MEASURES:
        if wanted and name not in wanted:
            continue
        section = report.Section(name, title)
        print(f"== {title}", flush=True)
        begin = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").run(section)
        except BaseException as exc:  # one measure never ends the run; KeyboardInterrupt still stops it below
            section.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            if isinstance(exc, KeyboardInterrupt):
                raise
        section.seconds = time.perf_counter() - begin
        sections.append(section)
        for figure, ours, other in section.summary:
            print(f"   {figure}: {ours}  |  {other}", flush=True)
        for gap in section.gaps:
            print(f"   missing: {gap}", flush=True)
        print(f"   ({section.seconds:.1f} s{', FAILED: ' + section.error if section.error else ''})", flush=True)
    seconds = time.perf_counter() - started
    environment = f"Python {platform.python_version()}, {platform.machine()}, {platform.system()}"
    markdown = report.render(sections, started=started_at, seconds=seconds, environment=environment)
    # A partial run leaves the full results.md alone and writes next to the raw data instead.
    path = report.RAW / "results-partial.md" if wanted else report.RESULTS
    path.write_text(markdown)
    raw = {s.key: {"data": s.data, "error": s.error, "seconds": s.seconds, "gaps": s.gaps} for s in sections}
    (report.RAW / "results.json").write_text(json.dumps(raw, indent=2, default=str))
    print()
    print(report.summary_table(sections))
    print()
    print(
        f"wrote {path.relative_to(report.HERE.parent)} and {len(list(report.PLOTS.glob('*.png')))} plots "
        f"in {seconds:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
