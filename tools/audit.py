"""pip-audit of what ships: the common layer's and every function's requirements.

    python -m tools.audit

Fails on any known vulnerability. A dependency pip-audit could not check (its vulnerability service is
unreachable, as on machines that reach only a package mirror) is never a silent pass: the run prints a
NOT AUDITED banner naming each one, and fails too when AUDIT_STRICT=1.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404  # runs pip-audit with a command line built here
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_files() -> list[Path]:
    return [ROOT / "layers/common/requirements.txt", *sorted((ROOT / "functions").glob("*/requirements.txt"))]


def main() -> int:
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off"]
    for path in requirement_files():
        command += ["-r", str(path)]
    # A fixed command line built above: our interpreter, pip-audit, and the repository's requirement files.
    run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
        print("pip-audit failed before auditing anything (see above)", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    unchecked = [dep for dep in dependencies if dep.get("skip_reason")]
    for dep in vulnerable:
        ids = ", ".join(vuln["id"] for vuln in dep["vulns"])
        print(f"VULNERABLE {dep['name']} {dep.get('version', '')}: {ids}")
    if unchecked:
        print("=" * 78)
        print(f"NOT AUDITED: pip-audit could not check {len(unchecked)} of {len(dependencies)} dependencies")
        print("(its vulnerability service is unreachable from here); they were NOT checked:")
        for dep in unchecked:
            print(f"  {dep['name']} {dep.get('version', '')}")
        print("=" * 78)
    audited = len(dependencies) - len(unchecked)
    print(f"pip-audit: {audited} dependencies audited, {len(vulnerable)} vulnerable, {len(unchecked)} not audited")
    if vulnerable:
        return 1
    return 1 if unchecked and os.environ.get("AUDIT_STRICT") == "1" else 0


if __name__ == "__main__":
    raise SystemExit(main())
