"""9. The local gateway (`python -m local.gateway`, PORT=0) under load: 8 concurrent clients on loopback.

Each client has its own user and session and a keep-alive connection; every route gets a warm-up round (so
the gateway's worker processes exist) and then a bounded number of requests and seconds. Requests per
second, p50 and p99 latency, and errors (any status other than the route's success, or no response).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.report import HERE, Section, table
from local import moto_fast

CLIENTS = 8
REQUESTS_PER_CLIENT = 50
ROUTE_SECONDS = 60  # a route stops early past this, whatever is left
STARTUP_SECONDS = 90
ROOT = HERE.parent
SNAPSHOT_ITEMS = 2_000
SNAPSHOT_SAMPLES = 15


class Gateway:
    def __init__(self, workdir: Path) -> None:
        self.state = workdir / "stack.json"
        self.log = (workdir / "gateway.log").open("w")
        command = [
            sys.executable,
            "-m",
            "local.gateway",
            "--template",
            str(ROOT / ".local" / "build" / "template.yaml"),  # what make dev serves (make local-build)
            "--state-file",
            str(self.state),
            "--no-schedules",
            "--warm",
        ]
        env = {**os.environ, "PORT": "0", "DEV_USER_ID": "dev-user"}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.state.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the gateway did not start: {(workdir / 'gateway.log').read_text()[-500:]}")
            time.sleep(0.1)
        self.url = json.loads(self.state.read_text())["gateway_url"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _load(url: str, route: dict[str, Any], sessions: list[tuple[Any, str]], requests_each: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + ROUTE_SECONDS

    def client(http: Any, session_id: str) -> None:
        path = route["path"].format(sid=session_id)
        for _ in range(requests_each):
            if time.monotonic() > stop_at:
                return
            started = time.perf_counter()
            try:
                response = http.request(route["method"], url + path, json=route.get("body"), timeout=30)
                failed = None if response.status_code == route["status"] else f"{response.status_code}"
            except Exception as exc:  # a refused or dropped connection counts as an error
                failed = type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if failed:
                    errors.append(failed)

    threads = [threading.Thread(target=client, args=pair) for pair in sessions]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50": harness.percentile(latencies, 0.5),
        "p99": harness.percentile(latencies, 0.99),
    }


def run(section: Section) -> None:
    import requests

    routes = {
        "get session": {"method": "GET", "path": "/api/v1/sessions/{sid}", "status": 200},
        "append message": {
            "method": "POST",
            "path": "/api/v1/sessions/{sid}/messages",
            "status": 201,
            "body": {"role": "user", "content": "A message of ordinary length for the load test."},
        },
    }
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as workdir:
        gateway = Gateway(Path(workdir))
        try:
            sessions = []
            for number in range(CLIENTS):
                http = requests.Session()
                http.headers["X-Dev-User"] = f"load-{number}"
                created = http.post(gateway.url + "/api/v1/sessions", json={"title": "load"}, timeout=60)
                created.raise_for_status()
                sessions.append((http, created.json()["session_id"]))
            for name, route in routes.items():
                probe = route["path"].format(sid="session_0123456789abcdef")
                if not harness.has_route(route["method"], probe):
                    section.gap(f"{name}: `{route['method']} {route['path']}` is not in template.yaml yet")
                    continue
                _load(gateway.url, route, sessions, 2)  # warm-up: one worker per concurrent client
                results[name] = _load(gateway.url, route, sessions, REQUESTS_PER_CLIENT)
            for http, _ in sessions:
                http.close()
        finally:
            gateway.stop()
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                r["requests"],
                f"{r['seconds']:.1f}",
                f"**{r['rps']:.0f}**",
                f"{r['p50']:.0f}",
                f"{r['p99']:.0f}",
                len(r["errors"])
                if not r["errors"]
                else f"**{len(r['errors'])}** ({', '.join(sorted(set(r['errors'])))})",
            ]
        )
    section.data = {name: dict(r) for name, r in results.items()}
    section.add(
        f"{CLIENTS} clients × {REQUESTS_PER_CLIENT} requests per route (at most {ROUTE_SECONDS} s), after a "
        "warm-up round; the gateway with its default worker pool per function, moto server on loopback, all "
        "on the same 2 cores as the clients.",
        table(["route", "requests", "seconds", "requests/s", "p50 ms", "p99 ms", "errors"], rows),
    )
    if "append message" in results:
        plain, cheap = _moto_transaction_cost()
        section.data["moto_append_ms"] = {"snapshot": plain, "no_snapshot": cheap}
        section.add(
            "Appends are slow here because of moto, not the function: moto's TransactWriteItems deep-copies the "
            "table once per operation (its rollback snapshot), and the gateway's moto server holds every item the "
            f"run wrote. In-process on a {SNAPSHOT_ITEMS:,}-item table, one append takes {plain:.0f} ms with that "
            f"snapshot and {cheap:.0f} ms without it (medians of {SNAPSHOT_SAMPLES}); under 8 concurrent clients "
            "the snapshots queue behind each other."
        )
    total_errors = sum(len(r["errors"]) for r in results.values())
    section.target(
        "gateway under load: zero errors",
        total_errors == 0 if results else None,
        f"{total_errors} errors in {sum(r['requests'] for r in results.values())} requests",
    )
    for name, r in results.items():
        section.summary.append(
            (
                f"Local gateway, {name}, {CLIENTS} clients",
                f"{r['rps']:.0f} req/s, p99 {r['p99']:.0f} ms, {len(r['errors'])} errors",
                "—",
            )
        )


def _moto_transaction_cost() -> tuple[float, float]:
    """Median ms of one in-process append on a table of SNAPSHOT_ITEMS items, with and without moto's snapshot."""
    with harness.moto_stack() as stack, harness.quiet():
        session_id = stack.api.create_session(title="moto")["session_id"]
        harness.seed_messages(stack.table, session_id, SNAPSHOT_ITEMS)
        body = {"role": "user", "content": "moto"}

        def append() -> float:
            started = time.perf_counter()
            assert stack.api("POST", f"/api/v1/sessions/{session_id}/messages", body=body).status == 201
            return (time.perf_counter() - started) * 1000

        plain = harness.median([append() for _ in range(SNAPSHOT_SAMPLES)])
        with moto_fast.installed():
            cheap = harness.median([append() for _ in range(SNAPSHOT_SAMPLES)])
    return plain, cheap
