"""4. Cold start: import plus first invocation, in fresh interpreters, for every function of template.yaml.

Next to the same sessions endpoints written with FastAPI + Mangum (benchmarks/peers/fastapi_sessions) and the
floor: `import boto3`, one DynamoDB client, one GetItem. Every target runs in its own fresh interpreter
with the function's Lambda environment, against one moto server on loopback holding the template's table;
the order of targets is shuffled in every round.

Two ways, each its own table: as Lambda runs them (the `sam build` artifacts of `make local-build`, in the
runtime-like Python of `.local/runtime` with only the runtime's packages, `-B` so nothing writes bytecode:
what the artifacts ship is what is used; the peer's packages built the same way), and from the sources in
the development virtualenv after one discarded round has compiled their bytecode (the earlier table).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.report import HERE, Section, table

RUNS = 15
CHILD = HERE / "cold_child.py"
PEER_DIR = HERE / "peers" / "fastapi_sessions"
PEER = "FastAPI + Mangum (sessions)"
FLOOR = "floor: boto3 + client + GetItem"
TARGET_VS_PEER = 0.6
TARGET_VS_FLOOR = 1.3
REPO = HERE.parent
SHIPPED_TEMPLATE = REPO / ".local" / "build" / "template.yaml"
# The peer's packages as a deployment would ship them: built once, like our layer (pinned, bytecode).
PEER_BUILD = REPO / ".local" / "bench" / "fastapi-peer"
PEER_PACKAGES = ("fastapi", "mangum")
# Installed here (aws-sam-cli brings them) but not in the Lambda runtime; botocore imports them when present.
NOT_IN_LAMBDA = ["awscrt", "OpenSSL"]


@dataclass
class Target:
    name: str
    spec: dict[str, Any]
    environment: dict[str, str]
    what: str
    python: str = sys.executable
    flags: tuple[str, ...] = ("-I",)
    samples: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def total(self) -> float:
        return harness.median([s["import_ms"] + s["first_ms"] for s in self.samples])

    def part(self, name: str) -> float:
        return harness.median([s[name] for s in self.samples])


# The read a user makes first of each endpoint group (API.md), in order of preference.
FIRST_READS = (
    "/api/v1/sessions/{session_id}",
    "/api/v1/sessions/{session_id}/messages",
    "/api/v1/sessions/{session_id}/slides",
    "/api/v1/sessions/{session_id}/exports",
    "/api/v1/sessions/{session_id}/shares",
    "/api/v1/sessions/{session_id}/comments",
    "/api/v1/sessions/{session_id}/history",
    "/api/v1/health",
    "/api/v1/openapi.json",
    "/api/v1/sessions",
)


def _first_request(spec: Any, session_id: str) -> tuple[str, str] | None:
    """The request a function's first invocation gets: its group's first read (a GET of one session's data)."""
    paths = {r.path for r in spec.routes if r.method in ("GET", "ANY") and r.path != "$default"}
    for path in FIRST_READS:
        if path in paths:
            return "GET", path.replace("{session_id}", session_id)
    routes = sorted(
        (r for r in spec.routes if r.path != "$default" and r.method != "OPTIONS"),
        key=lambda r: (r.method not in ("GET", "ANY"), r.path.count("{"), r.path),
    )
    if not routes:
        return None
    method = "GET" if routes[0].method == "ANY" else routes[0].method
    path = routes[0].path.replace("{session_id}", session_id)
    while "{" in path:
        path = path[: path.index("{")] + "x_0" + path[path.index("}") + 1 :]
    return method, path


def _event_for(spec: Any, session_id: str) -> tuple[dict[str, Any], str] | None:
    from tests import support

    request = _first_request(spec, session_id)
    if request is not None:
        method, path = request
        _, event = support.http_event(method, path, user="alice")
        return event, f"{method} {path.replace(session_id, '{id}')}"
    if spec.schedules:
        return json.loads((support.EVENTS / "schedule.json").read_text()), "scheduled event"
    return None


def _peer_build() -> tuple[Path, Path]:
    """(the peer's code, its packages) built for this machine with bytecode, as a deployment would ship them."""
    pins = [
        line.split("#")[0].strip()
        for line in (HERE / "requirements.txt").read_text().splitlines()
        if line.split("==")[0].strip().lower() in PEER_PACKAGES
    ]
    code, packages = PEER_BUILD / "code", PEER_BUILD / "packages"
    stamp = PEER_BUILD / ("built-" + "-".join(pins) + "-constrained")
    if not stamp.exists():
        shutil.rmtree(PEER_BUILD, ignore_errors=True)
        code.mkdir(parents=True)
        shutil.copy(PEER_DIR / "app.py", code / "app.py")
        # Constrained by our layer's pins: the peer's pydantic is the same version as ours.
        constraints = ["-c", str(REPO / "layers" / "common" / "requirements.txt")]
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(packages)]
        pip += [*constraints, *pins]
        subprocess.run(pip, check=True)
        for directory in (code, packages):  # boto3 and pydantic-core's own deps come from the runtime/packages
            compile_all = [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode"]
            subprocess.run([*compile_all, "unchecked-hash", str(directory)], check=True)
        stamp.touch()
    return code, packages


def _targets(
    specs: list[Any], endpoint: str, session_id: str, table_name: str, *, shipped: bool
) -> tuple[list[Target], list[str]]:
    from local.runtime import RUNTIME_PYTHON, lambda_environment

    python, flags = (str(RUNTIME_PYTHON), ("-I", "-B")) if shipped else (sys.executable, ("-I",))
    targets, skipped = [], []
    for spec in specs:
        found = _event_for(spec, session_id)
        if found is None:
            skipped.append(f"{spec.logical_id} (no route or schedule to invoke)")
            continue
        if not (spec.code_dir / (spec.handler.split(".")[0] + ".py")).exists():
            skipped.append(f"{spec.logical_id} (no {spec.handler.split('.')[0]}.py in {spec.code_dir.name}/ yet)")
            continue
        event, what = found
        targets.append(
            Target(
                spec.logical_id,
                {
                    "kind": "handler",
                    "code_dir": str(spec.code_dir),
                    "layer_dirs": [str(d) for d in spec.layer_dirs],
                    "handler": spec.handler,
                    "event": event,
                },
                lambda_environment(spec, endpoint),
                what,
                python,
                flags,
            )
        )
    sessions = next(spec for spec in specs if spec.logical_id == "SessionsFunction")
    peer_code, peer_packages = _peer_build() if shipped else (PEER_DIR, None)
    environment = lambda_environment(sessions, endpoint)
    _, event = __import__("tests.support", fromlist=["http_event"]).http_event(
        "GET", f"/api/v1/sessions/{session_id}", user="alice"
    )
    targets.append(
        Target(
            PEER,
            {
                "kind": "handler",
                "code_dir": str(peer_code),
                "layer_dirs": [str(peer_packages)] if peer_packages else [],
                "handler": "app.lambda_handler",
                "event": event,
            },
            environment,
            "GET /api/v1/sessions/{id}",
            python,
            flags,
        )
    )
    key = {"PK": {"S": f"SESSION#{session_id}"}, "SK": {"S": "#SESSION"}}
    floor = {"kind": "floor", "table": table_name, "key": key}
    targets.append(Target(FLOOR, floor, environment, "GetItem", python, flags))
    return targets, skipped


def _run_child(target: Target, *flags: str, **extra: Any) -> tuple[dict[str, Any] | None, str]:
    spec = {**target.spec, "absent": NOT_IN_LAMBDA, **extra}
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        process = subprocess.run(
            [target.python, *target.flags, *flags, str(CHILD), json.dumps(spec), result.name],
            env=target.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        text = Path(result.name).read_text()
    if process.returncode != 0 or not text:
        return None, (process.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(text), process.stderr


def _import_profile(target: Target) -> list[tuple[str, float]]:
    """Import time by top-level package (self time summed, ms), from `python -X importtime`."""
    _, stderr = _run_child(target, "-X", "importtime")
    by_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():  # "import time: <self us> | <cumulative us> | <indented name>"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|", 2)
        by_package[name.strip().split(".")[0]] += int(self_us) / 1000
    return sorted(by_package.items(), key=lambda item: item[1], reverse=True)


def _seed_session(endpoint: str) -> str:
    from sessions_api.dal import clients

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    clients.reset()
    try:
        with harness.quiet():
            from tests import support

            return support.Api().create_session(title="cold start")["session_id"]
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        clients.reset()


def _measure(targets: list[Target]) -> list[Target]:
    """RUNS samples of every target that starts at all (a first, discarded round finds those)."""
    for target in targets:
        sample, error = _run_child(target)
        if sample is None:
            target.failures.append(error)
    live = [t for t in targets if not t.failures]
    for _ in range(RUNS):
        random.shuffle(live)
        for target in live:
            sample, error = _run_child(target)
            if sample is None:
                target.failures.append(error)
            else:
                target.samples.append(sample)
    return live


def run(section: Section) -> None:
    from local.aws import start_local_aws
    from local.template import functions, load_stack
    from tests import support

    harness.configure_process()
    aws = start_local_aws(support.stack())
    try:
        session_id = _seed_session(aws.endpoint)
        shipped_specs = functions(load_stack(SHIPPED_TEMPLATE))
        shipped, shipped_skipped = _targets(shipped_specs, aws.endpoint, session_id, harness.table_name(), shipped=True)
        _measure(shipped)
        sources, skipped = _targets(
            harness.function_specs(), aws.endpoint, session_id, harness.table_name(), shipped=False
        )
        live = _measure(sources)
        profile = _import_profile(next(t for t in shipped if t.name == "SessionsFunction"))
        compiling = {}
        for target in live:
            sample, _ = _run_child(target, compile_cost=True)
            if sample is not None:
                compiling[target.name] = (sample["compiled_modules"], sample["compile_ms"])
    finally:
        aws.stop()
    report_shipped(section, shipped, shipped_skipped, profile)
    report(section, sources, skipped, compiling)


def _rows(targets: list[Target], compiling: dict[str, tuple[int, float]] | None) -> list[list[str]]:
    by_name = {t.name: t for t in targets if t.samples}
    peer, floor = by_name.get(PEER), by_name.get(FLOOR)
    rows = []
    for target in targets:
        if not target.samples:
            failure = "**failed**: " + "; ".join(target.failures[:1])
            rows.append([target.name, target.what, "—", "—", failure, "—", "—", "—"] + (["—"] if compiling else []))
            continue
        statuses = sorted({str(s.get("status")) for s in target.samples})
        row = [
            target.name,
            f"`{target.what}` → {', '.join(statuses)}",
            f"{target.part('import_ms'):.0f}",
            f"{target.part('first_ms'):.0f}",
            f"**{target.total():.0f}**",
            harness.ratio(target.total(), peer.total()) if peer else "—",
            harness.ratio(target.total(), floor.total()) if floor else "—",
            f"{harness.median([s['modules'] for s in target.samples]):.0f}",
        ]
        if compiling is not None:
            compiled = compiling.get(target.name)
            row.append(f"+{compiled[1]:.0f} ({compiled[0]})" if compiled else "—")
        rows.append(row)
    return rows


COLUMNS = [
    "target",
    "first invocation",
    "import ms",
    "first call ms",
    "import + first ms",
    "vs FastAPI peer",
    "vs floor",
    "modules loaded",
]


def report_shipped(
    section: Section, targets: list[Target], skipped: list[str], profile: list[tuple[str, float]]
) -> None:
    """The table that holds the targets: the artifacts as Lambda runs them."""
    by_name = {t.name: t for t in targets if t.samples}
    peer, floor = by_name.get(PEER), by_name.get(FLOOR)
    section.data["shipped"] = {
        t.name: {"samples": t.samples, "failures": t.failures, "median_ms": t.total() if t.samples else None}
        for t in targets
    }
    section.data["import_profile_ms"] = dict(profile[:15])
    section.add(
        "**As Lambda runs them.** The `sam build` artifacts (`make local-build`: the layer and every function "
        "with their packages as pinned and unchecked-hash bytecode), in `.local/runtime`'s Python, which "
        "holds only what the python3.13 runtime holds (boto3 and botocore at its version), run with `-B` so "
        "nothing compiles into a cache: each cold start uses what the artifact ships, as on Lambda's read-only "
        "`/var/task` and `/opt`. The FastAPI peer's packages are built the same way (pinned, bytecode). Median "
        f"of {RUNS} fresh interpreters per target (ms, this machine; Lambda's arm64 CPUs at 512 MB are slower, "
        "the ratios carry over).",
        table(COLUMNS, _rows(targets, None)),
    )
    if profile:
        section.add(
            "Where the sessions function's import time goes, as shipped (self time by top-level package, one "
            "`python -X importtime` run, ms):",
            table(["package", "ms"], [[name, f"{ms:.0f}"] for name, ms in profile[:10]]),
        )
    if skipped:
        section.gap("functions not measured: " + ", ".join(skipped))
    failed = [t.name for t in targets if t.failures and not t.samples]
    if failed:
        section.gap("functions that failed to start or answer: " + ", ".join(failed))
    ours = [t for t in targets if t.samples and t.name not in (PEER, FLOOR)]
    if peer:
        over = [f"{t.name} {t.total() / peer.total():.2f}×" for t in ours if t.total() > TARGET_VS_PEER * peer.total()]
        section.target(
            f"as shipped, no API function above {TARGET_VS_PEER}× its FastAPI peer",
            not over if ours else None,
            "; ".join(over) or ", ".join(f"{t.name} {t.total() / peer.total():.2f}×" for t in ours),
        )
    if floor:
        api_functions = [t for t in ours if t.name != "ExpiryFunction"]
        over = [
            f"{t.name} {t.total() / floor.total():.2f}×"
            for t in api_functions
            if t.total() > TARGET_VS_FLOOR * floor.total()
        ]
        section.target(
            f"as shipped, every API function within {TARGET_VS_FLOOR}× of the floor",
            not over if api_functions else None,
            "; ".join(over) or ", ".join(f"{t.name} {t.total() / floor.total():.2f}×" for t in api_functions),
        )
    sessions = by_name.get("SessionsFunction")
    if sessions and floor and peer:
        section.add(_why(sessions, peer, floor))
        section.summary.append(
            (
                "Cold start as shipped, sessions function (import + first call, median)",
                f"{sessions.total():.0f} ms ({sessions.total() / floor.total():.2f}× floor)",
                f"FastAPI + Mangum: {peer.total():.0f} ms ({peer.total() / floor.total():.2f}× floor)",
            )
        )


def report(
    section: Section, targets: list[Target], skipped: list[str], compiling: dict[str, tuple[int, float]]
) -> None:
    """The earlier table: from the sources, in the development virtualenv, with bytecode cached."""
    section.data["sources"] = {
        t.name: {"samples": t.samples, "failures": t.failures, "median_ms": t.total() if t.samples else None}
        for t in targets
    }
    section.data["compile_cost"] = compiling
    section.add(
        "**From the sources** (the earlier measure, kept for comparison): the functions' directories and "
        "`layers/common` in the development virtualenv, with `__pycache__` written by a discarded first round. "
        "The last column is what a cold start would add compiling the modules it imports from the package or "
        "layer if they shipped no bytecode (measured in the child). Runs hide `awscrt` and `pyOpenSSL` "
        "(installed here by aws-sam-cli, absent from the Lambda runtime), which botocore would otherwise import.",
        table([*COLUMNS, "without bytecode: +ms (modules)"], _rows(targets, compiling)),
    )
    if skipped:
        section.gap("functions not measured from the sources: " + ", ".join(skipped))


def _why(sessions: Target, peer: Target, floor: Target) -> str:
    """What the shipped cold-start figures are made of (from this run's numbers)."""
    beyond = sessions.total() - floor.total()
    return (
        "**Reading the targets.** The floor is mostly `import boto3` "
        f"({floor.part('import_ms'):.0f} ms of its {floor.total():.0f} ms), and every function that calls AWS "
        f"pays it too, so *within {TARGET_VS_FLOOR}× of the floor* leaves "
        f"{(TARGET_VS_FLOOR - 1) * floor.total():.0f} ms for everything else; the sessions function spends "
        f"{beyond:.0f} ms beyond it: Powertools' `event_handler` (its package `__init__` imports every resolver "
        "with `asyncio` and all event data classes, whichever one is used), pydantic and our models (schema "
        "building at import), and in the first call Powertools building its validation models. The peer is "
        f"{peer.total():.0f} ms, of which the same boto3 floor is {floor.total():.0f} ms: "
        f"*{TARGET_VS_PEER}× the peer* would need ours to spend "
        f"{max(0.0, TARGET_VS_PEER * peer.total() - floor.total()):.0f} ms beyond boto3 against the peer's "
        f"{peer.total() - floor.total():.0f} ms. The import profile above shows what is left; none of it is "
        "compiling any more (the artifacts ship bytecode)."
    )
