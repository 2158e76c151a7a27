"""Fault injection for tests: chosen AWS operations fail at botocore's HTTP layer (`before-send`), so the
SDK's retry mode handles them exactly as it would a real throttle or 5xx. The `faults` fixture lives in
tests/integration/conftest.py."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#{}"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def dynamodb_error(code: str, status: int = 400, **extra: Any) -> AWSResponse:
    body = json.dumps({"__type": DYNAMODB_ERROR.format(code), "message": f"injected {code}", **extra}).encode()
    return AWSResponse("https://dynamodb", status, {"x-amzn-requestid": "injected"}, _Raw(body))


def s3_error(code: str, status: int = 500) -> AWSResponse:
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    return AWSResponse("https://s3", status, {"content-type": "application/xml"}, _Raw(body))


@dataclass
class Faults:
    """Makes chosen operations fail `times` times (None: always), counting every attempt botocore makes."""

    attempts: Counter[str] = field(default_factory=Counter)
    _plans: dict[str, tuple[Any, int | None]] = field(default_factory=dict)

    def fail(self, operation: str, response: Any, times: int | None = None) -> None:
        self._plans[operation] = (response, times)

    def heal(self) -> None:
        self._plans.clear()

    def install(self, client: Any) -> None:
        # botocore names the operation only while building the request: note it in the request's context.
        client.meta.events.register(
            "before-call", lambda model, context, **_: context.__setitem__("operation_name", model.name)
        )
        client.meta.events.register_first("before-send", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        name = request.context.get("operation_name", "")
        if name not in self._plans:
            return None
        self.attempts[name] += 1
        response, times = self._plans[name]
        if times is not None and self.attempts[name] > times:
            return None
        # botocore asks every before-send handler, moto's too: an address moto serves nothing at keeps it from
        # also carrying out the request we answer with a fault.
        request.url = "https://fault-injected.invalid/"
        return response() if callable(response) else response


def bedrock_error(code: str, status: int) -> AWSResponse:
    body = json.dumps({"message": f"injected {code}"}).encode()
    return AWSResponse("https://bedrock", status, {"x-amzn-errortype": f"{code}:"}, _Raw(body))
