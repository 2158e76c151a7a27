"""A moto server on loopback for tests that need real concurrency (threads making real HTTP requests).

moto's DynamoDB is not atomic under concurrent requests: `transact_write_items` reads, checks and writes
item by item without a lock, and on a refused condition restores a deep copy of the whole table taken
when it began, wiping whatever other requests wrote meanwhile. Real DynamoDB loses neither, so the
server can handle one request at a time (`serialized=True`), which is what DynamoDB's per-item
atomicity promises for the requests these tests make.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local.aws import aws_client
from local.template import create_aws_resources
from tests import support


class _OneAtATime:
    """WSGI middleware: the whole request, response body included, under one lock."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class SerializedMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def moto_server(*, serialized: bool = True) -> Iterator[str]:
    """A moto server with the template's table and bucket; the layer's clients talk to it meanwhile.

    Requests queue behind each other here (and moto copies the whole table for every transaction), so
    the clients wait longer than in AWS and never retry: moto ignores TransactWriteItems'
    ClientRequestToken, so a retried transaction would apply twice, which DynamoDB never does.
    """
    from sessions_api.dal import clients

    server_class = SerializedMotoServer if serialized else ThreadedMotoServer
    server = server_class(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = os.environ.get("AWS_ENDPOINT_URL")
    try:
        create_aws_resources(support.stack(), aws_client("dynamodb", endpoint), aws_client("s3", endpoint))
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        clients.reset()
        original = clients._CONFIG
        clients._CONFIG = Config(
            retries={"mode": "standard", "max_attempts": 1}, read_timeout=120, max_pool_connections=64
        )
        try:
            yield endpoint
        finally:
            clients._CONFIG = original
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        clients.reset()
        server.stop()
