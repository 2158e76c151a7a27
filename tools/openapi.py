"""The API's OpenAPI 3.1 document, generated from the code of every function in template.yaml.

    python -m tools.openapi            write openapi.json (repo root) and functions/docs/openapi.json
    python -m tools.openapi --check    exit 1 when either file differs from what the code generates

Each function's Powertools resolver describes its own routes; Powertools' OpenAPIMerge joins them, and
`finish()` adds what spans the API: info, servers, the bearer scheme (public routes from the template's
`Auth: {Authorizer: NONE}`), tags by endpoint group, and the problem responses of every operation
(`sessions_api.http.problem_responses_for`, in place of Powertools' own 422 schema).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

from local import template

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = (ROOT / "openapi.json", ROOT / "functions" / "docs" / "openapi.json")
TITLE = "Sessions & Messages API"
DESCRIPTION = """\
Sessions, messages, chat, slides, exports and sharing for AI chat and slide-deck assistants.

**Authentication.** Every route but the service endpoints (`/api/v1/openapi.json`, `/api/v1/docs`,
`/api/v1/health`) needs `Authorization: Bearer <JWT>` from the configured issuer; the caller is the
token's `sub`. Under `make dev` the local gateway plays the authorizer and calls you `dev-user`.

**Errors** are RFC 9457 problems (`application/problem+json`, schema `Problem`) with a stable `code`.
A method a path does not support answers `405 method_not_allowed` with `Allow`; an unknown path `404`.

**Lists** are cursor-paginated (`limit`, `cursor` → `next_cursor`, `has_more`); cursors are opaque.
**Writes that create** take an optional `Idempotency-Key`. **Sessions** carry an `ETag`; `PATCH`
honours `If-Match`.
"""
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def api_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return str(tomllib.load(stream)["project"]["version"])


def _load(spec: template.FunctionSpec) -> ModuleType:
    """The function's handler module, imported the way Lambda would (its directory and layers on the path)."""
    for directory in (spec.code_dir, *spec.layer_dirs):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    name = f"openapi_{spec.logical_id}"
    path = spec.code_dir / (spec.handler.split(".")[0] + ".py")
    loader = importlib.util.spec_from_file_location(name, path)
    assert loader is not None
    assert loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def _route_regex(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(path)) + "$")


def _template_route(specs: list[template.FunctionSpec], method: str, path: str) -> tuple[str, template.RouteSpec]:
    for spec in specs:
        for route in spec.routes:
            if route.path == path and route.method in (method.upper(), "ANY"):
                return spec.logical_id, route
    raise SystemExit(f"{method.upper()} {path} is served by no route in template.yaml")


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` parameters are optional, never `null`: HTTP has no null header or query value."""
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(node: Any) -> None:
    """pydantic leaves `ge`/`le` as is on a type with a before-validator (`JsonInt`): spell them as JSON Schema.

    And a union pydantic picks a branch of with a function is `anyOf` in JSON Schema, not `oneOf`: its
    branches may overlap there (`0` is both an integer and a number).
    """
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for short, keyword in _BOUNDS.items():
                if short in node:
                    node[keyword] = node.pop(short)
        if "oneOf" in node and "discriminator" not in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _json_schema_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_schema_bounds(value)


def _group(logical_id: str) -> str:
    return logical_id.removesuffix("Function")


def finish(schema: dict[str, Any], specs: list[template.FunctionSpec]) -> dict[str, Any]:
    """The merged per-function schemas made into the API's document."""
    from sessions_api import http

    document = copy.deepcopy(schema)
    document["info"] = {"title": TITLE, "version": api_version(), "description": DESCRIPTION}
    document["servers"] = [{"url": "/", "description": "This API (relative, so it works on any host)"}]
    document["security"] = [{"bearerAuth": []}]
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _POWERTOOLS_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    problem = http.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    schemas["GatewayError"] = http.GatewayError.model_json_schema()
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access or id token of the API's issuer (Cognito by default)",
        }
    }
    tags: set[str] = set()
    for path, item in document.get("paths", {}).items():
        for method in [name for name in item if name in _HTTP_METHODS]:
            operation = item[method]
            logical_id, route = _template_route(specs, method, path)
            group = _group(logical_id)
            operation["tags"] = operation.get("tags") or [group]
            tags.update(operation["tags"])
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter.get("schema", {}))
            # An optional body is omitted, never `null` (`http._check_json` refuses a null body).
            for media in operation.get("requestBody", {}).get("content", {}).values():
                media["schema"] = _without_null(media.get("schema", {}))
            authorized = route.authorizer is not None
            if not authorized:
                operation["security"] = []
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # Powertools' HTTPValidationError: ours is a Problem
            for status, response in responses.items():
                if status == "204" or status.startswith("3"):
                    response.pop("content", None)  # Powertools gives every response a JSON body
                elif int(status) >= 400:
                    response["content"] = http.problem_response_spec(int(status))["content"]
            for status, response in http.problem_responses_for(method, operation, authorized=authorized).items():
                responses.setdefault(status, response)
            operation["responses"] = dict(sorted(responses.items()))
    document["tags"] = [{"name": name} for name in sorted(tags)]
    unused = json.dumps(document)
    for name in list(schemas):
        if f'"#/components/schemas/{name}"' not in unused and name not in ("Problem", "GatewayError"):
            del schemas[name]
    _json_schema_bounds(schemas)
    components["schemas"] = dict(sorted(schemas.items()))
    ordered = {
        key: document[key] for key in ("openapi", "info", "servers", "security", "tags", "paths") if key in document
    }
    ordered["components"] = components
    return ordered


def generate() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    stack = template.load_stack(ROOT / "template.yaml", overrides={})
    specs = [spec for spec in template.functions(stack) if spec.routes]
    for spec in specs:
        for key, value in spec.environment.items():
            os.environ.setdefault(key, value)
    merge = OpenAPIMerge(title=TITLE, version=api_version(), on_conflict="error")
    for spec in specs:
        if not (spec.code_dir / (spec.handler.split(".")[0] + ".py")).exists():
            print(f"warning: {spec.logical_id} has no code yet; its routes are not in the spec", file=sys.stderr)
            specs = [other for other in specs if other is not spec]
            continue
        app = getattr(_load(spec), "app", None)
        if app is not None and hasattr(app, "get_openapi_json_schema"):
            merge.add_schema(json.loads(app.get_openapi_json_schema()))
    return finish(merge.get_openapi_schema(), specs)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed files are out of date")
    arguments = parser.parse_args(argv)
    text = render(generate())
    if arguments.check:
        stale = [path for path in OUTPUTS if not path.exists() or path.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run `make openapi` and commit it", file=sys.stderr)
        return 1 if stale else 0
    for path in OUTPUTS:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
