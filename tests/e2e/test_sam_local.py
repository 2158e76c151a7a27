"""The `sam local` route for users with Docker, tested in its pieces (CI has no Docker): the embedded AWS of
`make local-aws` and its env.json, every events/*.json invoked the way `sam local invoke -e ... --env-vars`
would against it, and the identity fallback SAM CLI needs (it links no JWT authorizer), inert in AWS."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runtime import FunctionPool, lambda_environment
from local.template import FunctionSpec, functions, load_stack

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
FUNCTION_OF_EVENT = {
    "sessions": "SessionsFunction",
    "messages": "MessagesFunction",
    "sharing": "SharingFunction",
    "slides": "SlidesFunction",
    "exports": "ExportsFunction",
    "docs": "DocsFunction",
    "me": "MeFunction",
    "schedule": "ExpiryFunction",
    "worker": "ChatWorkerFunction",
}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """`make local-aws` on a free loopback port; containers would reach it as host.docker.internal."""
    path = tmp_path_factory.mktemp("sam") / "env.json"
    command = [sys.executable, "-m", "local.sam_local", "--host", "127.0.0.1", "--port", "0", "--env-file", str(path)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("READY"):
                break
        yield json.loads(path.read_text())
    finally:
        process.terminate()
        process.wait(timeout=10)


def specs() -> dict[str, FunctionSpec]:
    built = load_stack(REPO / ".local" / "build" / "template.yaml")
    return {spec.logical_id: spec for spec in functions(built)}


def sam_local_environment(spec: FunctionSpec, variables: dict[str, str], **extra: str) -> dict[str, str]:
    """What SAM CLI gives the container: the function's variables overridden by env.json, no endpoint of ours."""
    environment = {**lambda_environment(spec, ""), **variables, **extra}
    environment.pop("AWS_ENDPOINT_URL")
    return environment


def test_the_env_file_points_every_function_at_the_embedded_aws(env_file: dict[str, dict[str, str]]) -> None:
    source = {spec.logical_id: spec for spec in functions(load_stack(REPO / "template.yaml"))}
    assert set(env_file) == set(source)
    for logical_id, variables in env_file.items():
        assert variables["LOCAL_AWS_ENDPOINT"].startswith("http://host.docker.internal:")
        assert set(variables) == set(source[logical_id].environment), "SAM CLI overrides only declared variables"
        assert variables["TABLE_NAME"] == "sessions-api-local-Table"


@pytest.fixture(scope="module")
def reachable(env_file: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The same file as a process on this machine reaches the server (no Docker here)."""
    return {
        logical_id: {**variables, "LOCAL_AWS_ENDPOINT": variables["LOCAL_AWS_ENDPOINT"].replace(
            "host.docker.internal", "127.0.0.1")}
        for logical_id, variables in env_file.items()
    }  # fmt: skip


def invoke(spec: FunctionSpec, environment: dict[str, str], event: dict[str, Any]) -> Any:
    pool = FunctionPool(spec, environment, max_workers=1)
    try:
        invocation = pool.invoke(event)
    finally:
        pool.close()
    assert invocation.error is None, invocation.error
    return invocation.result


@pytest.mark.parametrize("event_file", sorted(EVENTS.glob("*.json")), ids=lambda path: path.stem)
def test_every_sample_event_runs_against_the_embedded_aws(
    reachable: dict[str, dict[str, str]], event_file: Path
) -> None:
    spec = specs()[FUNCTION_OF_EVENT[event_file.stem.split("_")[0]]]
    environment = sam_local_environment(spec, reachable[spec.logical_id], AWS_SAM_LOCAL="true")
    result = invoke(spec, environment, json.loads(event_file.read_text()))
    if "statusCode" in result:  # an API event (the schedule and the worker answer with their reports)
        assert result["statusCode"] < 500, result


def _without_claims(event_name: str, **headers: str) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((EVENTS / event_name).read_text()))
    event["requestContext"].pop("authorizer", None)
    event["headers"] = {**event.get("headers", {}), **headers}
    return event


def test_under_sam_local_the_caller_comes_from_x_dev_user(reachable: dict[str, dict[str, str]]) -> None:
    spec = specs()["SessionsFunction"]
    environment = sam_local_environment(spec, reachable[spec.logical_id], AWS_SAM_LOCAL="true")
    created = invoke(spec, environment, _without_claims("sessions_create.json", **{"x-dev-user": "carol"}))
    assert created["statusCode"] == 201 and json.loads(created["body"])["created_by"] == "carol"
    default = invoke(spec, environment, _without_claims("sessions_create.json"))
    assert json.loads(default["body"])["created_by"] == "dev-user"


@pytest.mark.parametrize("sam_local", ["false", None], ids=["AWS_SAM_LOCAL=false", "in Lambda (unset)"])
def test_anywhere_else_a_request_without_claims_is_401_whatever_its_headers(
    reachable: dict[str, dict[str, str]], sam_local: str | None
) -> None:
    spec = specs()["SessionsFunction"]
    environment = sam_local_environment(spec, reachable[spec.logical_id])
    environment.pop("AWS_SAM_LOCAL")
    if sam_local is not None:
        environment["AWS_SAM_LOCAL"] = sam_local
    refused = invoke(spec, environment, _without_claims("sessions_create.json", **{"x-dev-user": "carol"}))
    assert refused["statusCode"] == 401
