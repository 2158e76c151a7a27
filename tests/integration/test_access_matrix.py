"""The one policy, proven route by route in-process: every authorized route × every kind of caller.

Rows live in tests/access_matrix.py (how to add yours is explained there); the end-to-end twin is
tests/e2e/test_access_matrix_e2e.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import template
from sessions_api.logic import policy
from tests import access_matrix as matrix
from tests import support
from tests.conftest import all_items


def client_for(api: support.Api) -> matrix.Client:
    def call(method: str, path: str, *, user: str, body: Any = None, query: Any = None, headers: Any = None):
        result = api(method, path, user=user, body=body, query=dict(query) if query else None, headers=headers)
        return matrix.Reply(result.status, result.body, result.raw.get("body") or "")

    return call


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["PK"], item["SK"]


class Baseline:
    """The table as the world left it; every case starts from exactly this state (cheaper than a new world)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.items = self.current()
        self.dirty = False  # a case may have written since the last restore

    def current(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {_key(item): item for item in all_items(self.table)}

    def restore(self) -> None:
        if not self.dirty:
            return
        current = self.current()
        with self.table.batch_writer() as batch:
            for key in current:
                if key not in self.items:
                    batch.delete_item(Key={"PK": key[0], "SK": key[1]})
            for key, item in self.items.items():
                if current.get(key) != item:
                    batch.put_item(Item=item)
        self.dirty = False


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[matrix.World, Baseline]]:
    """Given a session shared view / edit / collaborate, one share revoked and one expired."""
    with in_process_world() as built:
        yield built


@contextmanager
def in_process_world() -> Iterator[tuple[matrix.World, Baseline]]:
    """The matrix's world in a moto account of its own, with the chat worker on the table's stream."""
    from sessions_api.dal import clients

    with mock_aws():
        clients.reset()
        template.create_aws_resources(support.stack(), boto3.client("dynamodb"), boto3.client("s3"))
        table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
        worker = support.start_chat_worker()
        built = matrix.build_world(client_for(support.Api()), table, whole_table=True)
        for name in {part[1:-1] for row in matrix.ROUTES for part in row.path.split("/") if part.startswith("{")}:
            built.param(name)  # seeds write to the world, so they belong to the baseline
        yield built, Baseline(table)
        worker.stop()
        clients.reset()


@pytest.mark.parametrize(("row", "role"), matrix.CASES, ids=matrix.CASE_IDS)
def test_route_answers_each_caller_as_the_policy_says(
    world: tuple[matrix.World, Baseline], row: matrix.Row, role: str
) -> None:
    the_world, baseline = world
    baseline.restore()
    baseline.dirty = True
    # When the role calls the route, then it gets what the policy demands, and a refused caller
    # leaves the whole table as it was (run_case compares it after `prepare` and after the call)
    # and learns nothing of the session
    matrix.run_case(the_world, row, role)
    baseline.dirty = row.may(role) or row.prepare is not None


def test_every_served_route_has_a_row() -> None:
    served = matrix.served_routes()
    rows = {row.route for row in matrix.ROUTES}
    missing = sorted(f"{method} {path} ({fn})" for (method, path), fn in served.items() if (method, path) not in rows)
    assert not missing, "routes without a row in tests/access_matrix.ROUTES:\n" + "\n".join(missing)


def test_every_row_is_a_served_route() -> None:
    served = matrix.served_routes()
    stale = sorted({row.name for row in matrix.ROUTES if row.route not in served})
    assert not stale, f"rows for routes no function serves: {stale}"


def test_the_policy_is_the_contracts() -> None:
    # "view reads everything; edit also writes messages, slides and renames; collaborate also comments
    # and exports. Only the owner deletes, shares, or changes status."
    names = {policy.Permission.VIEW: "view", policy.Permission.EDIT: "edit"}
    names |= {policy.Permission.COLLABORATE: "collaborate", policy.Permission.OWNER: "owner"}
    assert {action: names[policy.REQUIRED[action]] for action in policy.Action} == matrix.LEAST_ROLE
