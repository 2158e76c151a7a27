"""Schemathesis against openapi.json, in-process (tests/wsgi.py): every operation, generated valid and
invalid requests, every check (no 5xx, documented status, content type, headers and schema, invalid data
refused, valid data accepted, auth honoured, unsupported methods 405). Derandomized: failures reproduce."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests import wsgi

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi.app)
MAX_EXAMPLES = 100
# Schema-valid requests the API still refuses, rightly: a made-up cursor (opaque, only the server issues
# them) is 400, an ETag it never issued is a stale one (412), and rules no JSON Schema states, such as "an
# expiration in the future" or "shared=true takes only limit and cursor", are 422 - which
# `semantic_rules_only` below keeps honest.
schema.config.checks.positive_data_acceptance.expected_statuses.extend(["400", "412", "422"])
# Unknown query parameters are ignored, as most public APIs do (old clients send ones we dropped): no point
# generating them as "invalid".
schema.config.generation.allow_extra_parameters = False
# Refusals of schema-violating requests that come before validation: too large (413), a stale If-Match (412).
schema.config.checks.negative_data_rejection.expected_statuses.extend(["412", "413"])
# What pydantic reports for a rule the spec does state: such a 422 to a schema-valid request is a spec bug.
SCHEMA_ERROR_TYPES = {
    "missing", "extra_forbidden", "string_too_short", "string_too_long", "string_pattern_mismatch",
    "string_type", "int_parsing", "int_type", "float_parsing", "bool_parsing", "enum", "literal_error",
    "too_short", "too_long", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
    "model_type", "dict_type", "list_type", "datetime_from_date_parsing", "datetime_parsing", "json_invalid",
}  # fmt: skip


def semantic_rules_only(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """A 422 to a request the spec calls valid must come from a rule the spec cannot state (`value_error`)."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_negative or response.status_code != 422:
        return
    errors = json.loads(response.content).get("errors") or []
    broken = [error for error in errors if error.get("type") in SCHEMA_ERROR_TYPES]
    assert not broken, f"a schema-valid request was refused for a rule the spec could state: {broken}"


@pytest.fixture
def world(aws: None) -> Iterator[None]:
    """A fresh moto account per operation; its examples share it (and so meet each other's data)."""
    yield


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: CI time; the curl line reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_spec(case: schemathesis.Case, world: None) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {wsgi.FUZZ_TOKEN}"}, additional_checks=[semantic_rules_only]
    )
