"""`make dev`: the stack of template.yaml served the way API Gateway and Lambda would, without Docker.

    python -m local.gateway [--template template.yaml] [--warm] [--no-schedules]

Environment: PORT (default 3000; 0 picks a free port), WS_PORT (the WebSocket API's, with its @connections
API; default PORT + 1, a free port when PORT is 0), DEV_USER_ID (the caller when no X-Dev-User header or
`?user=` is sent; default dev-user; empty: no caller, so authorized routes answer 401), and any template
parameter or function environment variable by its name (`IdleTimeoutMinutes=5`, `IDLE_TIMEOUT_MINUTES=2`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from local import snapshot, streams
from local.aws import LocalAws, aws_client, default_state_file, reachable_host, start_local_aws, write_state
from local.devlog import FunctionLog, log
from local.routing import (
    Request,
    Response,
    Router,
    build_event,
    dev_claims,
    gateway_response,
    http_response,
    is_preflight,
    new_request_id,
    stage_path,
    with_cors,
    write_response,
)
from local.runtime import FunctionPool, lambda_environment
from local.schedule import Job, ScheduleError, Scheduler, parse_schedule, scheduled_event
from local.template import (
    HttpApiSpec,
    ScheduleSpec,
    Stack,
    TemplateError,
    WebSocketApiSpec,
    functions,
    http_api,
    load_stack,
    websocket_api,
)
from local.websocket import LiveGateway

API_TIMEOUT_SECONDS = 30  # HTTP API gives up on an integration after 30 s
MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's request payload limit
MAX_LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # a synchronous invocation's event, and its result


class Gateway:
    """One HTTP API in front of the stack's functions."""

    def __init__(self, api: HttpApiSpec, pools: Mapping[str, FunctionPool], dev_user: str) -> None:
        self.api = api
        self.dev_user = dev_user
        self.router = Router(
            (route, pool) for pool in pools.values() for route in pool.spec.routes if route.api == api.logical_id
        )

    def handle(self, request: Request) -> tuple[Response, str | None]:
        """The response to `request`, and the logical id of the function that answered (if one did)."""
        request_id = new_request_id()
        response, function = self._respond(request, request_id)
        if self.api.cors is not None:
            response = with_cors(self.api.cors, request, response)
        response.headers.append(("apigw-requestid", request_id))
        return response, function

    def _respond(self, request: Request, request_id: str) -> tuple[Response, str | None]:
        path = stage_path(self.api, request.target.partition("?")[0])
        match = None if path is None else self.router.match(request.method, path)
        if match is None:
            if self.api.cors is not None and is_preflight(request):
                # A preflight no route takes is answered by API Gateway itself (with_cors adds the rest).
                return Response(204), None
            return gateway_response(404, "Not Found"), None

        now = time.time()
        deadline = time.monotonic() + API_TIMEOUT_SECONDS  # from the request's arrival, a cold start included
        claims = None
        if match.route.authorizer is not None:
            claims = dev_claims(request, self.dev_user, now)
            if claims is None:
                return gateway_response(401, "Unauthorized", [("www-authenticate", "Bearer")]), None
        pool = match.target
        function = pool.spec.logical_id
        event = build_event(request, match, self.api, claims, request_id, now)
        if len(json.dumps(event)) > MAX_LAMBDA_PAYLOAD_BYTES:
            return gateway_response(413, "Request Entity Too Large"), function

        # Past 30 s API Gateway answers 503 while the function runs on; locally the worker is stopped then.
        invocation = pool.invoke(event, deadline=deadline)
        if invocation.error is not None:
            if invocation.error["errorType"] == "Sandbox.Timedout" and time.monotonic() >= deadline:
                return gateway_response(503, "Service Unavailable"), function
            return gateway_response(500, "Internal Server Error"), function
        if len(json.dumps(invocation.result)) > MAX_LAMBDA_PAYLOAD_BYTES:
            print(f"{function}: the result is larger than Lambda's 6 MB limit", file=sys.stderr, flush=True)
            return gateway_response(500, "Internal Server Error"), function
        try:
            return http_response(invocation.result), function
        except (ValueError, TypeError, AttributeError) as error:
            print(f"{function}: malformed Lambda proxy response: {error!r}", file=sys.stderr, flush=True)
            return gateway_response(500, "Internal Server Error"), function


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def _serve(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            self.close_connection = True  # the rest of the oversized body is never read
            response, function = gateway_response(413, "Request Entity Too Large"), None
        else:
            request = Request(
                method=self.command,
                target=self.path,
                headers=[*self.headers.items(), *self._forwarded_headers()],
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            response, function = self.server.gateway.handle(request)
        write_response(self, response)
        milliseconds = (time.perf_counter() - started) * 1000
        log(
            self.command,
            self.path.partition("?")[0],
            response.status,
            f"{milliseconds:.0f}ms",
            function or "-",
        )

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _forwarded_headers(self) -> list[tuple[str, str]]:
        """The headers API Gateway adds on the way in."""
        trace_id = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        return [
            ("X-Forwarded-For", self.client_address[0]),
            ("X-Forwarded-Port", str(self.server.server_address[1])),
            ("X-Forwarded-Proto", "http"),
            ("X-Amzn-Trace-Id", trace_id),
        ]

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is over API Gateway's limit."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("content-length") or 0)
        return None if length > MAX_BODY_BYTES else self.rfile.read(length)

    def _read_chunked_body(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF closing the chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of browser or load-test connections waits instead of being reset

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway


def _run_scheduled(pool: FunctionPool, schedule: ScheduleSpec, when: datetime) -> None:
    started = time.perf_counter()
    event = json.loads(schedule.input) if schedule.input else scheduled_event(schedule.rule_arn, when)
    invocation = pool.invoke(event)
    milliseconds = (time.perf_counter() - started) * 1000
    outcome = "error" if invocation.failed else "ok"
    log("SCHEDULE", schedule.expression, outcome, f"{milliseconds:.0f}ms", pool.spec.logical_id)


def _schedule_jobs(pools: Mapping[str, FunctionPool]) -> list[Job]:
    jobs = []
    for pool in pools.values():
        for schedule in pool.spec.schedules:
            name = f"{pool.spec.logical_id}.{schedule.name}"
            if not schedule.enabled:
                continue
            try:
                parsed = parse_schedule(schedule.expression)
            except ScheduleError as error:
                print(f"warning: {name} is not scheduled locally: {error}", file=sys.stderr)
                continue
            jobs.append(Job(name, parsed, functools.partial(_run_scheduled, pool, schedule)))
    return jobs


def _stream_pollers(stack: Stack, pools: Mapping[str, FunctionPool], aws: LocalAws) -> list[streams.StreamPoller]:
    """Every `Type: DynamoDB` event of the template, as Lambda's event-source mapping would run it."""
    dynamodb, dynamodb_streams = aws_client("dynamodb", aws.endpoint), aws_client("dynamodbstreams", aws.endpoint)
    pollers = []
    for logical_id, pool in pools.items():
        for table_id, properties in streams.stream_events(stack.resources()[logical_id]):
            table = stack.physical_name(table_id)
            stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            mapping = streams.source_mapping(stream_arn, properties)
            pollers.append(streams.StreamPoller(dynamodb_streams, mapping, functools.partial(_run_streamed, pool)))
            print(f"  {'DynamoDB stream of ' + table_id:<60} → {logical_id}")
    return pollers


def _run_streamed(pool: FunctionPool, event: dict[str, Any]) -> None:
    started = time.perf_counter()
    invocation = pool.invoke(event)
    milliseconds = (time.perf_counter() - started) * 1000
    log(
        "STREAM",
        f"{len(event['Records'])} record(s)",
        "error" if invocation.failed else "ok",
        f"{milliseconds:.0f}ms",
        pool.spec.logical_id,
    )
    if invocation.failed:
        raise RuntimeError(f"{pool.spec.logical_id} failed on a stream batch")  # the poller retries it


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.gateway", description="Serve template.yaml locally.")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, help="default: .local/stack.json next to the template")
    parser.add_argument("--concurrency", type=int, default=4, help="workers per function at most (default 4)")
    parser.add_argument("--warm", action="store_true", help="start one worker per function right away")
    parser.add_argument("--no-schedules", action="store_true", help="do not run scheduled functions")
    parser.add_argument("--data-dir", type=Path, help="load the tables and buckets from here, save them on exit")
    parser.add_argument("--ws-port", type=int, help="the WebSocket API's port (default: WS_PORT, else PORT + 1)")
    return parser.parse_args(argv)


def _print_routes(pools: Mapping[str, FunctionPool], live_api: WebSocketApiSpec | None) -> None:
    for pool in pools.values():
        for route in pool.spec.routes:
            print(f"  {route.key:<60} → {pool.spec.logical_id}")
        for schedule in pool.spec.schedules:
            state = "" if schedule.enabled else " (disabled)"
            print(f"  {schedule.expression + state:<60} → {pool.spec.logical_id}")
    for key, websocket_route in (live_api.routes if live_api else {}).items():
        print(f"  {'WebSocket ' + key:<60} → {websocket_route.function}")


def _ws_port(arguments: argparse.Namespace, port: int) -> int:
    if arguments.ws_port is not None:
        return int(arguments.ws_port)
    return int(os.environ.get("WS_PORT", port + 1 if port else 0))  # beside the HTTP port; free with PORT=0


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    try:
        stack = load_stack(arguments.template)
        api = http_api(stack)
        live_api = websocket_api(stack)
    except (OSError, TemplateError) as error:
        sys.exit(f"{arguments.template}: {error}")
    state_file = arguments.state_file or default_state_file(stack)
    port = int(os.environ.get("PORT", "3000"))
    live_listener = None
    if live_api is not None:
        ws_port = _ws_port(arguments, port)
        try:
            live_listener = socket.create_server((arguments.host, ws_port))
        except OSError as error:
            sys.exit(f"Cannot listen on {arguments.host}:{ws_port} ({error.strerror}); set WS_PORT to another port.")
        # Bound before the functions' environment is resolved: LIVE_CONNECTIONS_URL names this address.
        stack.local_apis[live_api.logical_id] = f"{reachable_host(arguments.host)}:{live_listener.getsockname()[1]}"
    try:
        specs = functions(stack)
    except TemplateError as error:
        sys.exit(f"{arguments.template}: {error}")

    aws = start_local_aws(stack)
    dynamodb, s3 = aws_client("dynamodb", aws.endpoint), aws_client("s3", aws.endpoint)
    if arguments.data_dir and arguments.data_dir.is_dir():
        loaded = snapshot.load(arguments.data_dir, dynamodb, s3, aws.resources)
        print(f"Loaded {loaded} items and objects from {arguments.data_dir}", flush=True)
    logs = {spec.logical_id: FunctionLog(spec.logical_id, state_file.parent / "logs") for spec in specs}
    pools = {
        spec.logical_id: FunctionPool(
            spec, lambda_environment(spec, aws.endpoint), arguments.concurrency, stdout=logs[spec.logical_id].stream
        )
        for spec in specs
    }
    dev_user = os.environ.get("DEV_USER_ID", "dev-user")
    try:
        server = GatewayServer((arguments.host, port), Gateway(api, pools, dev_user))
    except OSError as error:
        aws.stop()
        sys.exit(f"Cannot listen on {arguments.host}:{port} ({error.strerror}); set PORT to another port.")
    live = None if live_api is None else LiveGateway(live_api, pools, dev_user)
    scheduler = Scheduler([] if arguments.no_schedules else _schedule_jobs(pools))
    pollers = _stream_pollers(stack, pools, aws)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, which runs in this (the main) thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base_url = f"http://{arguments.host}:{server.server_address[1]}"
    live_url = None
    try:
        _print_routes(pools, live_api)
        if arguments.warm:
            for pool in pools.values():
                threading.Thread(target=pool.warm, daemon=True).start()
        scheduler.start()
        for poller in pollers:
            poller.start()
        if live is not None and live_listener is not None:
            live.start(live_listener)
            live_url = f"ws://{arguments.host}:{live_listener.getsockname()[1]}/{live.api.stage}"
        state = {"pid": os.getpid(), "gateway_url": base_url, "aws_endpoint": aws.endpoint, "websocket_url": live_url}
        write_state(state_file, {**state, "local_apis": stack.local_apis, "resources": aws.resources})
        print(f"AWS (moto) on {aws.endpoint}: {', '.join(aws.resources.values()) or 'no resources'}")
        if live_url is not None:
            print(f"WebSocket API on {live_url} (?user=<id> as the caller; @connections at http{live_url[2:]})")
        print(f"Gateway on {base_url} (Ctrl-C to stop)", flush=True)
        server.serve_forever(poll_interval=0.1)
    finally:
        if live is not None:
            live.stop()  # before the workers stop: each connection's $disconnect still runs
        scheduler.stop()
        for poller in pollers:
            poller.stop()
        for pool in pools.values():
            pool.close()
        for function_log in logs.values():
            function_log.close()
        server.server_close()
        if arguments.data_dir:
            kinds = {logical_id: stack.resource_type(logical_id) for logical_id in aws.resources}
            saved = snapshot.save(arguments.data_dir, dynamodb, s3, aws.resources, kinds)
            print(f"Saved {saved} items and objects to {arguments.data_dir} (make dev-reset wipes them)", flush=True)
        aws.stop()
        state_file.unlink(missing_ok=True)
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
