"""A function's import loads only what its routes need: no AWS client, no benchmark or dev-only package, and no
other endpoint group's use cases. (Tracing and document libraries: tests/unit/test_cold_start_imports.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import function_specs

PROBE = """
import importlib.util, json, sys
path, name = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
from sessions_api.dal import clients
cached = {n: f.cache_info().currsize for n, f in vars(clients).items() if hasattr(f, "cache_info")}
print(json.dumps({"modules": sorted(sys.modules), "clients": cached}))
"""
# Installed in the development venv (benchmarks/requirements.txt, requirements-dev.txt) but not in Lambda:
# an import of one would pass every local test and fail on the first cold start in AWS. (awscrt and
# pyOpenSSL are left out: botocore itself imports them when they are installed.)
NOT_IN_LAMBDA = {
    "fastapi",
    "mangum",
    "starlette",
    "anyio",
    "httpx",
    "langchain_core",
    "langchain_community",
    "sqlalchemy",
    "matplotlib",
    "numpy",
    "moto",
    "pytest",
    "yaml",
    "requests",
    "samcli",
    "cfnlint",
}
# Use cases that belong to one function each: another function importing them pays for code it never runs.
OWNED_LOGIC = {
    # The erasure worker purges a session as the schedule does.
    "sessions_api.logic.expiry": ("ExpiryFunction", "ErasureWorkerFunction"),
    "sessions_api.logic.erasing": ("ErasureWorkerFunction",),
    "sessions_api.logic.purge": ("ExpiryFunction",),
    "sessions_api.logic.chat": ("MessagesFunction", "LiveFunction"),  # chats start over HTTP or the socket
    "sessions_api.logic.exports": ("ExportsFunction",),
    "sessions_api.logic.live": ("LiveFunction",),
}
FUNCTIONS = sorted(logical_id for logical_id, spec in function_specs().items() if (spec.code_dir / "app.py").exists())


def imported(logical_id: str) -> dict[str, object]:
    spec = function_specs()[logical_id]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))},
        **spec.environment,
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), *map(str, spec.layer_dirs)]),
    }
    path = spec.code_dir / (spec.handler.split(".")[0] + ".py")
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), f"fn_{logical_id}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=spec.code_dir,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_importing_a_function_loads_only_what_its_routes_need(logical_id: str) -> None:
    # Given the function's code directory and layers, as Lambda puts them on the path
    # When its handler module is imported (the init phase of a cold start)
    found = imported(logical_id)
    modules = set(found["modules"])  # type: ignore[arg-type]
    # Then no AWS client exists yet: each is created by the first request that uses it
    assert found["clients"] == dict.fromkeys(found["clients"], 0)  # type: ignore[arg-type]
    # And nothing from outside the Lambda runtime and the layer is imported
    assert not {name.split(".")[0] for name in modules} & NOT_IN_LAMBDA
    # And no other function's use cases are
    foreign = {name for name, owners in OWNED_LOGIC.items() if name in modules and logical_id not in owners}
    assert not foreign, f"{logical_id} imports {sorted(foreign)}"


def test_the_scheduled_function_loads_no_http_routing() -> None:
    modules = set(imported("ExpiryFunction")["modules"])  # type: ignore[arg-type]
    assert not any(name.startswith("aws_lambda_powertools.event_handler") for name in modules)
    assert "aws_lambda_powertools.utilities.idempotency" not in modules
