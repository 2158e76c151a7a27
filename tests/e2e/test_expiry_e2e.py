"""Expiry end to end: `make invoke FN=ExpiryFunction EVENT=events/schedule.json` against a running gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest

from local import template
from sessions_api.dal import keys
from tests.e2e.conftest import REPO, ApiClient, RunningGateway


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


def invoke_expiry(gateway: RunningGateway) -> dict[str, Any]:
    """What `make invoke FN=ExpiryFunction EVENT=events/schedule.json` runs, against this gateway's AWS."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.invoke",
            "ExpiryFunction",
            "events/schedule.json",
            "--template",
            ".local/build/template.yaml",
            "--state-file",
            str(gateway.state_file),
        ],
        cwd=REPO,
        env=gateway.environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def test_an_idle_session_expires_when_the_schedule_fires(gateway: RunningGateway, api: ApiClient, table: Any) -> None:
    # Given a session whose idle timeout has passed (aged in the table: the gateway runs the default 1 day)
    session = api.post("/api/v1/sessions", json={"title": "soon idle", "prompt": "hello"}).json()
    session_id = session["session_id"]
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression="SET GSI3SK = :past, active_until = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 60},
    )
    # When the expiry function is invoked with the schedule's event
    report = invoke_expiry(gateway)
    # Then the session is expired, still readable, refuses writes, and its history says so
    assert report["expired"] >= 1 and report["errors"] == 0
    got = api.get(f"/api/v1/sessions/{session_id}").json()
    assert got["status"] == "expired"
    refused = api.post(f"/api/v1/sessions/{session_id}/messages", json={"role": "user", "content": "late"})
    assert refused.status_code == 409 and refused.json()["code"] == "session_expired"
    history = api.get(f"/api/v1/sessions/{session_id}/history", params={"order": "desc"}).json()
    assert history["timeline"][0]["type"] == "expired"


def test_a_deleted_session_is_purged_by_the_next_run(gateway: RunningGateway, api: ApiClient, table: Any) -> None:
    session_id = api.post("/api/v1/sessions", json={"prompt": "hello"}).json()["session_id"]
    assert api.delete(f"/api/v1/sessions/{session_id}").status_code == 204
    assert invoke_expiry(gateway)["purged"] >= 1
    left = table.query(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": keys.session_pk(session_id)},
        ConsistentRead=True,
    )["Items"]
    assert left == []
