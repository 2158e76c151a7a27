"""End-to-end fixtures: the local gateway (`python -m local.gateway`) as a subprocess on a free port.

`gateway` serves the repository's template.yaml for the whole test session; `api` calls it as a fresh
user of its own, so tests never see each other's data; `gateway.as_user("alice")` calls it as anyone, and
`gateway.live("alice")` opens a connection to its WebSocket API as anyone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60


class ApiClient(requests.Session):
    """A requests session against the gateway: paths are relative to it, the caller is `user`."""

    def __init__(self, base_url: str, user: str | None = None, email: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        if user is not None:
            self.headers["X-Dev-User"] = user
        if email is not None:
            self.headers["X-Dev-Email"] = email

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        return super().request(method, f"{self.base_url}{url!s}", *args, **kwargs)


@dataclass(frozen=True)
class RunningGateway:
    base_url: str  # e.g. http://127.0.0.1:54321
    moto_url: str  # the moto server holding the stack's tables and buckets
    resources: dict[str, str]  # physical names by logical id
    state_file: Path  # what `python -m local.invoke --state-file` reads
    log_file: Path  # everything the gateway and its functions printed
    environment: dict[str, str]  # the gateway's process environment: `local.invoke` against it needs the same
    websocket_url: str | None = None  # e.g. ws://127.0.0.1:54322/live; None when the template has no WebSocket API

    def as_user(self, user: str | None, email: str | None = None) -> ApiClient:
        """A client calling as `user` (None: no X-Dev-User header, so the gateway's DEV_USER_ID)."""
        return ApiClient(self.base_url, user, email)

    def live(self, user: str | None, email: str | None = None) -> ClientConnection:
        """A connection to the WebSocket API as `user` (`?user=`; None: the gateway's DEV_USER_ID)."""
        assert self.websocket_url is not None, "the template has no WebSocket API"
        query = urlencode({name: value for name, value in (("user", user), ("email", email)) if value is not None})
        return connect(f"{self.websocket_url}?{query}" if query else self.websocket_url, open_timeout=30)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@contextmanager
def run_gateway(
    template: Path, workdir: Path, environment: Mapping[str, str] | None = None, arguments: Sequence[str] = ()
) -> Iterator[RunningGateway]:
    """Start the gateway on a free port for `template`; it is stopped on exit, whatever happened."""
    state_file = workdir / "stack.json"
    log_file = workdir / "gateway.log"
    # Only what a process needs from the test run's environment: any other variable named like a template
    # parameter or function variable would override it (that is the gateway's job), so tests pass those here.
    inherited = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env = {**inherited, "PORT": "0", "DEV_USER_ID": "dev-user", **(environment or {})}
    command = [
        sys.executable,
        "-m",
        "local.gateway",
        "--template",
        str(template),
        "--state-file",
        str(state_file),
    ]
    with log_file.open("w") as log:
        process = subprocess.Popen([*command, "--no-schedules", *arguments], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not state_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start:\n{log_file.read_text()}")
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        yield RunningGateway(
            state["gateway_url"],
            state["aws_endpoint"],
            state["resources"],
            state_file,
            log_file,
            env,
            state.get("websocket_url"),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class GatewayStarter(Protocol):
    def __call__(
        self, template: Path, environment: Mapping[str, str] | None = None, arguments: Sequence[str] = ()
    ) -> AbstractContextManager[RunningGateway]: ...


@pytest.fixture(scope="session")
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayStarter:
    """`with start_gateway(template, {"DEV_USER_ID": ""}) as running:` another gateway, for a stack of a test's own."""

    def start(
        template: Path, environment: Mapping[str, str] | None = None, arguments: Sequence[str] = ()
    ) -> AbstractContextManager[RunningGateway]:
        return run_gateway(template, tmp_path_factory.mktemp("gateway"), environment, arguments)

    return start


@pytest.fixture(scope="session")
def gateway(start_gateway: GatewayStarter) -> Iterator[RunningGateway]:
    """The gateway serving what `sam build` made of template.yaml (`make local-build`), as `make dev` runs it
    (the local echo model)."""
    with start_gateway(REPO / ".local" / "build" / "template.yaml", {"ModelProvider": "local"}) as running:
        yield running


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[ApiClient]:
    with gateway.as_user(f"user-{uuid.uuid4().hex[:12]}") as client:
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
