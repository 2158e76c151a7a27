"""The access matrix end to end: every authorized route × every kind of caller, through the local gateway
(its authorizer, routing and Lambda runtime) against its moto server.

The rows are tests/access_matrix.py (shared with tests/integration/test_access_matrix.py). A request
through the gateway costs ~0.2 s and every world makes the local table (and moto's per-transaction copy of
it) bigger, so the cases that must change nothing (refused callers, and callers of a GET) share one world;
any other case gets a world of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from local import template
from tests import access_matrix as matrix

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningGateway


@pytest.fixture(scope="module")
def client(gateway: RunningGateway) -> Iterator[matrix.Client]:
    with requests.Session() as session:

        def call(
            method: str,
            path: str,
            *,
            user: str,
            body: Any = None,
            query: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> matrix.Reply:
            response = session.request(
                method,
                f"{gateway.base_url}{path}",
                params=query,
                data=None if body is None else json.dumps(body),
                headers={"X-Dev-User": user, "Content-Type": "application/json", **(headers or {})},
                allow_redirects=False,
                timeout=30,
            )
            is_json = "json" in response.headers.get("Content-Type", "")
            return matrix.Reply(response.status_code, response.json() if is_json else None, response.text)

        yield call


@pytest.fixture(scope="module")
def table(gateway: RunningGateway) -> Any:
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=gateway.moto_url,
        region_name=template.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return dynamodb.Table(gateway.resources["Table"])


@pytest.fixture(scope="module")
def shared_worlds() -> dict[str, matrix.World]:
    return {}  # "" → the world of every case about the session that must leave it as it was


@pytest.mark.parametrize(("row", "role"), matrix.CASES, ids=matrix.CASE_IDS)
def test_route_answers_each_caller_as_the_policy_says(
    client: matrix.Client, table: Any, shared_worlds: dict[str, matrix.World], row: matrix.Row, role: str
) -> None:
    # Given a session shared view / edit / collaborate, one share revoked and one expired
    if row.prepare is None and (row.method == "GET" or not row.may(role)):
        # A route not about one session may create the caller's own (POST /sessions): its own world then.
        key = "" if row.action is not None else row.name
        if key not in shared_worlds:
            shared_worlds[key] = matrix.build_world(client, table)
        world = shared_worlds[key]
    else:
        world = matrix.build_world(client, table)
    # When the role calls the route through the gateway, then it gets what the policy demands, and a
    # refused caller leaves the session as it was and learns nothing of it
    matrix.run_case(world, row, role)


def test_every_served_route_has_a_row() -> None:
    served = matrix.served_routes()
    missing = sorted(f"{method} {path}" for method, path in served if (method, path) not in matrix.ROWS_BY_ROUTE)
    assert not missing, f"routes without a row in tests/access_matrix.ROUTES: {missing}"
