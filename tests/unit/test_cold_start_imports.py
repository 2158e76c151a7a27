"""What each function imports on a cold start: the X-Ray SDK only with tracing on, document libraries only in
the exports function, no pydantic email/network extras anywhere."""

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
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""
DOCUMENT_LIBRARIES = {"pptx", "docx", "fpdf", "reportlab", "PIL", "lxml", "xlsxwriter"}
PYDANTIC_EXTRAS = {"email_validator", "dns", "idna", "phonenumbers"}
FUNCTIONS = sorted(logical_id for logical_id, spec in function_specs().items() if (spec.code_dir / "app.py").exists())


def cold_start_modules(logical_id: str, tracing: bool) -> set[str]:
    spec = function_specs()[logical_id]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))},
        **spec.environment,
        "TRACING_ENABLED": "true" if tracing else "false",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), *map(str, spec.layer_dirs)]),
    }
    env.pop("AWS_SAM_LOCAL", None)
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
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_a_cold_start_imports_only_what_the_function_needs(logical_id: str) -> None:
    modules = cold_start_modules(logical_id, tracing=False)
    assert "aws_xray_sdk" not in modules, "the X-Ray SDK is imported with tracing off"
    assert not modules & PYDANTIC_EXTRAS
    if logical_id != "ExportsFunction":
        assert not modules & DOCUMENT_LIBRARIES, f"{logical_id} imports {modules & DOCUMENT_LIBRARIES}"


def test_tracing_on_imports_the_tracer() -> None:
    # The control for the test above: the switch really switches.
    assert "aws_xray_sdk" in cold_start_modules("SessionsFunction", tracing=True)


def test_a_function_that_calls_no_aws_service_imports_no_boto3() -> None:
    # The docs function serves files of its own: boto3 would only cost its cold start (botocore stays:
    # Powertools imports it, when present, to tag its user agent)
    assert "boto3" not in cold_start_modules("DocsFunction", tracing=False)
