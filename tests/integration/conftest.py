"""Integration fixtures beyond tests/conftest.py."""

from __future__ import annotations

from types import SimpleNamespace

import botocore.endpoint
import pytest

from sessions_api.dal import clients
from tests.faults import Faults


@pytest.fixture
def faults(aws: None, monkeypatch: pytest.MonkeyPatch) -> Faults:
    # Retries back off for real in production; here they happen at once.
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None))
    injector = Faults()

    for client in (clients.dynamodb(), clients.dynamodb_wire(), clients.s3(), clients.bedrock_runtime()):
        injector.install(client)
    return injector
