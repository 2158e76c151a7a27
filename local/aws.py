"""The local AWS: a moto server on loopback holding the stack's tables and buckets.

A running gateway records where it is in a state file (`.local/stack.json`), so that
`python -m local.invoke` can run a function against the same data.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local import moto_fast
from local.template import REGION, Stack, create_aws_resources


def aws_client(service: Literal["dynamodb", "dynamodbstreams", "s3"], endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's conventional fake credentials  # nosec B106
    )


class _OneRequestAtATime:
    """DynamoDB applies each request atomically; moto's backends do not lock, and a failed transaction
    even restores a whole-table copy taken before it, undoing what a concurrent request wrote. Serving one
    request at a time keeps concurrent clients of the local stack as safe as they are on AWS."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class SerializedMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@dataclass
class LocalAws:
    endpoint: str
    resources: dict[str, str]  # physical names by logical id
    _server: ThreadedMotoServer

    def stop(self) -> None:
        self._server.stop()


def reachable_host(host: str) -> str:
    """Where this machine reaches a server listening on `host`."""
    # Bound to every interface (for containers, local.sam_local), it is still reached here through loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104  # nosec B104


def start_local_aws(stack: Stack, host: str = "127.0.0.1", port: int = 0) -> LocalAws:
    """A moto server (on a free loopback port by default) with the stack's tables and buckets created."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log would drown the gateway's
    moto_fast.install()
    server = SerializedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_port = server.get_host_and_port()[1]
    endpoint = f"http://{reachable_host(host)}:{bound_port}"
    try:
        resources = create_aws_resources(stack, aws_client("dynamodb", endpoint), aws_client("s3", endpoint))
    except BaseException:
        server.stop()
        raise
    return LocalAws(endpoint, resources, server)


def default_state_file(stack: Stack) -> Path:
    return stack.base_dir / ".local" / "stack.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)  # readers never see half a file


def read_running_state(path: Path) -> dict[str, Any] | None:
    """The state a still-running gateway wrote, or None (no file, or its process or moto is gone)."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
        address = urlsplit(state["aws_endpoint"])
        with socket.create_connection((address.hostname, address.port), timeout=1):
            return state
    except (OSError, ValueError, KeyError):
        return None
