"""Every function as `sam build` ships it (`.local/build`, this machine's architecture), with tracing on and
off, run by a Python holding only the Lambda runtime's packages: a dependency the artifacts lack (the X-Ray
SDK once was) fails here as every request would fail in AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import GatewayStarter, RunningGateway

REPO = Path(__file__).resolve().parents[2]
BUILT_TEMPLATE = REPO / ".local" / "build" / "template.yaml"
API = "/api/v1"


@pytest.fixture(scope="module", params=["Active", "Disabled"], ids=["tracing on", "tracing off"])
def built(request: pytest.FixtureRequest, start_gateway: GatewayStarter) -> Iterator[RunningGateway]:
    with start_gateway(BUILT_TEMPLATE, {"ModelProvider": "local", "TracingMode": request.param}) as running:
        yield running


def test_the_build_ships_every_function_with_its_layer_and_bytecode() -> None:
    built_dirs = {path.name for path in BUILT_TEMPLATE.parent.iterdir() if path.is_dir()}
    source = (REPO / "template.yaml").read_text()
    for function in ("Sessions", "Messages", "Sharing", "Slides", "Exports", "Docs", "Expiry"):
        assert f"{function}Function:" in source and f"{function}Function" in built_dirs
    layer = BUILT_TEMPLATE.parent / "CommonLayer" / "python"
    assert (layer / "aws_xray_sdk").is_dir(), "TracingMode=Active imports the X-Ray SDK: the layer must ship it"
    assert not (layer / "botocore").exists() and not (layer / "boto3").exists(), "the runtime's SDK, not a copy"
    # Lambda cannot write .pyc: the layer, every function and their packages ship it, unchecked-hash
    compiled = [
        layer / "sessions_api" / "__pycache__" / "http.cpython-313.pyc",
        layer / "pydantic" / "__pycache__" / "main.cpython-313.pyc",
        BUILT_TEMPLATE.parent / "SessionsFunction" / "__pycache__" / "app.cpython-313.pyc",
        BUILT_TEMPLATE.parent / "ExportsFunction" / "render" / "__pycache__" / "parse.cpython-313.pyc",
        BUILT_TEMPLATE.parent / "ExportsFunction" / "pptx" / "__pycache__" / "presentation.cpython-313.pyc",
    ]
    for pyc in compiled:
        assert pyc.read_bytes()[4:8] == (1).to_bytes(4, "little"), f"{pyc} is not an unchecked-hash .pyc"


def test_every_api_function_answers_from_the_built_artifacts(built: RunningGateway) -> None:
    with built.as_user("alice") as client:
        created = client.post(f"{API}/sessions", json={"title": "built", "prompt": "hello"})
        assert created.status_code == 201, created.text
        session = f"{API}/sessions/{created.json()['session_id']}"
        answers = {
            "messages": client.post(f"{session}/messages", json={"role": "user", "content": "hi"}),
            "chat": client.post(f"{session}/chat", json={"message": "and you?"}),
            "slides": client.put(f"{session}/slides", json={"slides": [{"slide_id": "a", "html": "<h1>A</h1>"}]}),
            "export": client.post(f"{session}/export", json={"format": "pdf"}),
            "share": client.post(f"{session}/share", json={"recipients": ["bob"], "permissions": "view"}),
            "docs": client.get(f"{API}/openapi.json"),
            "health": client.get(f"{API}/health"),
        }
    for route, answer in answers.items():
        assert answer.status_code < 300, f"{route}: {answer.status_code} {answer.text[:300]}"
    assert "Runtime.ImportModuleError" not in built.log()


def test_the_scheduled_function_runs_from_the_built_artifacts(built: RunningGateway) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "local.invoke", "ExpiryFunction", "events/schedule.json", "--template",
         str(BUILT_TEMPLATE), "--state-file", str(built.state_file)],
        cwd=REPO, env=built.environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["finished"] is True
