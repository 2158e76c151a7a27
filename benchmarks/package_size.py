"""8. Each function's and the layer's built size from `sam build` (no Docker), against Lambda's 250 MB.

Lambda's limit is on the unzipped function plus all its layers. The build goes to a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks.report import HERE, Section, table

LIMIT = 250 * 1024 * 1024
ROOT = HERE.parent


def _mb(size: int) -> str:
    return f"{size / 2**20:,.2f} MB" if size >= 2**20 / 10 else f"{size / 1024:,.0f} KiB"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _zipped(path: Path, scratch: Path) -> int:
    archive = scratch / f"{path.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                out.write(file, file.relative_to(path))
    return archive.stat().st_size


def run(section: Section) -> None:
    sam = ROOT / ".venv" / "bin" / "sam"
    scratch = Path(tempfile.mkdtemp(prefix="bench-sam-"))
    try:
        build, cache = scratch / "build", scratch / "cache"
        process = subprocess.run(
            [str(sam), "build", "--build-dir", str(build), "--cache-dir", str(cache)],
            cwd=ROOT,
            # packaging/Makefile runs in a scratch directory, where pyenv's .python-version is not seen
            env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if process.returncode != 0:
            tail = " ".join((process.stderr or process.stdout).strip().splitlines()[-3:])
            section.gap(f"`sam build` failed: {tail}")
            return
        built = sorted(p for p in build.iterdir() if p.is_dir())
        layers = [p for p in built if p.name.endswith("Layer")]
        layer_bytes = sum(_size(p) for p in layers)
        rows, data = [], {}
        for path in built:
            size, zipped = _size(path), _zipped(path, scratch)
            is_layer = path in layers
            total = size if is_layer else size + layer_bytes
            data[path.name] = {"unzipped": size, "zipped": zipped, "with_layers": total}
            rows.append(
                [
                    path.name,
                    "layer" if is_layer else "function",
                    _mb(size),
                    _mb(zipped),
                    "—" if is_layer else _mb(total),
                    "—" if is_layer else f"{total / LIMIT:.1%}",
                ]
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    section.data = data
    section.add(
        "`sam build --build-dir <tmp> --cache-dir <tmp>` (arm64 wheels, no Docker). MB = 2^20 bytes; the limit "
        "is 250 MB unzipped for a function and all its layers together.",
        table(["artifact", "kind", "unzipped", "zipped", "function + layers, unzipped", "of 250 MB"], rows),
    )
    functions = {name: d for name, d in data.items() if not name.endswith("Layer")}
    if functions:
        worst = max(functions.items(), key=lambda item: item[1]["with_layers"])
        section.target(
            "every function with its layers under 250 MB unzipped",
            worst[1]["with_layers"] < LIMIT,
            f"largest: {worst[0]} at {worst[1]['with_layers'] / 2**20:,.1f} MB ({worst[1]['with_layers'] / LIMIT:.1%})",
        )
        section.summary.append(
            (
                "Largest function + layer, unzipped",
                f"{worst[0]}: {worst[1]['with_layers'] / 2**20:,.1f} MB "
                f"({worst[1]['with_layers'] / LIMIT:.0%} of 250 MB)",
                "—",
            )
        )
