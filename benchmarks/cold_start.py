"""4. Cold start: import plus first invocation, in fresh interpreters, for every function of template.yaml.

Next to the same sessions endpoints written with FastAPI + Mangum (benchmarks/peers/fastapi_sessions) and the
floor: `import boto3`, one DynamoDB client, one GetItem. Every target runs in its own fresh `python -I`
with the function's Lambda environment, against one moto server on loopback holding the template's table;
the order of targets is shuffled in every round, and one discarded round first compiles the bytecode.
"""

from __future__ import annotations

import json
import os
import random
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
TARGET_VS_PEER = 0.7
TARGET_VS_FLOOR = 1.3
# Installed here (aws-sam-cli brings them) but not in the Lambda runtime; botocore imports them when present.
NOT_IN_LAMBDA = ["awscrt", "OpenSSL"]


@dataclass
class Target:
    name: str
    spec: dict[str, Any]
    environment: dict[str, str]
    what: str
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


def _targets(stack: Any, endpoint: str, session_id: str, table_name: str) -> tuple[list[Target], list[str]]:
    from local.runtime import lambda_environment

    targets, skipped = [], []
    specs = harness.function_specs()
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
            )
        )
    sessions = next(spec for spec in specs if spec.logical_id == "SessionsFunction")
    environment = lambda_environment(sessions, endpoint)
    _, event = __import__("tests.support", fromlist=["http_event"]).http_event(
        "GET", f"/api/v1/sessions/{session_id}", user="alice"
    )
    targets.append(
        Target(
            PEER,
            {
                "kind": "handler",
                "code_dir": str(PEER_DIR),
                "layer_dirs": [],
                "handler": "app.lambda_handler",
                "event": event,
            },
            environment,
            "GET /api/v1/sessions/{id}",
        )
    )
    key = {"PK": {"S": f"SESSION#{session_id}"}, "SK": {"S": "#SESSION"}}
    targets.append(Target(FLOOR, {"kind": "floor", "table": table_name, "key": key}, environment, "GetItem"))
    return targets, skipped


def _run_child(target: Target, *flags: str, **extra: Any) -> tuple[dict[str, Any] | None, str]:
    spec = {**target.spec, "absent": NOT_IN_LAMBDA, **extra}
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        process = subprocess.run(
            [sys.executable, "-I", *flags, str(CHILD), json.dumps(spec), result.name],
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


def run(section: Section) -> None:
    from local.aws import start_local_aws
    from tests import support

    harness.configure_process()
    aws = start_local_aws(support.stack())
    try:
        session_id = _seed_session(aws.endpoint)
        targets, skipped = _targets(support.stack(), aws.endpoint, session_id, harness.table_name())
        for target in targets:  # compiles bytecode; a target that cannot start is reported, not measured
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
        profile = _import_profile(next(t for t in targets if t.name == "SessionsFunction"))
        compiling = {}
        for target in live:
            sample, _ = _run_child(target, compile_cost=True)
            if sample is not None:
                compiling[target.name] = (sample["compiled_modules"], sample["compile_ms"])
    finally:
        aws.stop()
    report(section, targets, skipped, profile, compiling)


def report(
    section: Section,
    targets: list[Target],
    skipped: list[str],
    profile: list[tuple[str, float]],
    compiling: dict[str, tuple[int, float]],
) -> None:
    by_name = {t.name: t for t in targets if t.samples}
    peer, floor = by_name.get(PEER), by_name.get(FLOOR)
    rows = []
    for target in targets:
        if not target.samples:
            rows.append(
                [
                    target.name,
                    target.what,
                    "—",
                    "—",
                    "**failed**: " + "; ".join(target.failures[:1]),
                    "—",
                    "—",
                    "—",
                    "—",
                ]
            )
            continue
        statuses = sorted({str(s.get("status")) for s in target.samples})
        compiled = compiling.get(target.name)
        rows.append(
            [
                target.name,
                f"`{target.what}` → {', '.join(statuses)}",
                f"{target.part('import_ms'):.0f}",
                f"{target.part('first_ms'):.0f}",
                f"**{target.total():.0f}**",
                harness.ratio(target.total(), peer.total()) if peer else "—",
                harness.ratio(target.total(), floor.total()) if floor else "—",
                f"{harness.median([s['modules'] for s in target.samples]):.0f}",
                f"+{compiled[1]:.0f} ({compiled[0]})" if compiled else "—",
            ]
        )
    section.data = {
        t.name: {"samples": t.samples, "failures": t.failures, "median_ms": t.total() if t.samples else None}
        for t in targets
    }
    section.data["import_profile_ms"] = dict(profile[:15])
    section.data["compile_cost"] = compiling
    section.add(
        f"Median of {RUNS} fresh interpreters per target (ms, on this machine; Lambda's arm64 CPUs at 512 MB "
        "are slower, the ratios carry over). Import is the module and everything it imports; first "
        "invocation includes creating the boto3 client and the DynamoDB call to the moto server on loopback.",
        table(
            [
                "target",
                "first invocation",
                "import ms",
                "first call ms",
                "import + first ms",
                "vs FastAPI peer",
                "vs floor",
                "modules loaded",
                "without bytecode: +ms (modules)",
            ],
            rows,
        ),
        "Bytecode: these runs reuse `__pycache__`, but `sam build` ships the layer and the functions without "
        "`.pyc` and Lambda's `/opt` and `/var/task` are read-only, so in Lambda every cold start also compiles "
        "each module it imports from the package or the layer (the last column: the compile time of exactly "
        "those modules, measured in the child; boto3 and the standard library ship compiled in the runtime). "
        "The same holds for the FastAPI peer's packages. Runs hide `awscrt` and `pyOpenSSL` (installed here by "
        "aws-sam-cli, absent from the Lambda runtime), which botocore would otherwise import.",
    )
    if profile:
        section.add(
            "Where the sessions function's import time goes (self time by top-level package, one "
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
            f"no function above {TARGET_VS_PEER}× its FastAPI peer",
            not over if ours else None,
            "; ".join(over) or ", ".join(f"{t.name} {t.total() / peer.total():.2f}×" for t in ours),
        )
    sessions = by_name.get("SessionsFunction")
    if sessions and floor and peer:
        section.add(_why(sessions, peer, floor, compiling))
    if sessions and floor:
        section.target(
            f"sessions function within {TARGET_VS_FLOOR}× of the floor",
            sessions.total() <= TARGET_VS_FLOOR * floor.total(),
            f"{sessions.total():.0f} ms vs {floor.total():.0f} ms = {sessions.total() / floor.total():.2f}×",
        )
        section.summary.append(
            (
                "Cold start, sessions function (import + first call, median)",
                f"{sessions.total():.0f} ms ({sessions.total() / floor.total():.2f}× floor)",
                f"FastAPI + Mangum: {peer.total():.0f} ms ({peer.total() / floor.total():.2f}× floor)" if peer else "—",
            )
        )


def _why(sessions: Target, peer: Target, floor: Target, compiling: dict[str, tuple[int, float]]) -> str:
    """What the cold-start figures are made of, and what would move them (from this run's numbers)."""
    beyond = sessions.total() - floor.total()
    own = compiling.get("SessionsFunction", (0, 0.0))
    return (
        "**Reading the cold-start targets.** The floor is mostly `import boto3` "
        f"({floor.part('import_ms'):.0f} ms of its {floor.total():.0f} ms), and every function pays it too, so "
        f"*within {TARGET_VS_FLOOR}× of the floor* leaves {(TARGET_VS_FLOOR - 1) * floor.total():.0f} ms for "
        f"everything else; the sessions function spends {beyond:.0f} ms beyond the floor: Powertools' "
        "`event_handler` (its package `__init__` imports every resolver - AppSync, Bedrock Agent, VPC Lattice, "
        "Lambda URLs - with `asyncio` and all event data classes, whichever one is used), pydantic and our "
        "models (schema building at import), the access-policy, sharing and lifecycle modules the sessions "
        "routes use, and in the first call `boto3.resource('dynamodb')` (the resource model JSON and a scan of "
        "the available services) plus Powertools building its validation models on the first request. "
        f"*0.7× the FastAPI peer* is out of reach for the same reason: the peer is {peer.total():.0f} ms of which "
        f"the shared boto3 floor is {floor.total():.0f} ms, so 0.7× would need ours to spend "
        f"{max(0.0, 0.7 * peer.total() - floor.total()):.0f} ms beyond boto3 against the peer's "
        f"{peer.total() - floor.total():.0f} ms.\n\n"
        "What would move them, largest first: (1) **ship bytecode** - the built layer has no `.pyc`, so in "
        f"Lambda each cold start also compiles the {own[0]} modules the sessions function imports from it "
        f"(+{own[1]:.0f} ms here, more than everything else together); compiling the layer at build time "
        "(a `BuildMethod: makefile` layer that runs `python -m compileall -q --invalidation-mode unchecked-hash` "
        "over its output; `unchecked-hash` because zip extraction does not keep source mtimes) removes it. "
        "(2) In `dal/clients.py`, build the plain-values client as `boto3.client('dynamodb')` with boto3's "
        "`TransformationInjector` handlers registered on it (exactly what the resource registers) instead of "
        "`boto3.resource('dynamodb').meta.client`: about 40 ms less per cold start in a fresh-process A/B here, "
        "same behaviour. (3) Nothing cheap remains in the import itself: it loads no AWS client, no tracer and "
        "no other group's use cases (tests/unit/test_import_hygiene.py); Powertools' resolver package cannot be "
        "imported in part."
    )
