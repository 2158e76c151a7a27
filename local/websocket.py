"""What API Gateway does around a WebSocket API's Lambda proxy integration, on one local port.

`LiveGateway` serves the template's WebSocket API as `wss://<api>.execute-api.<region>.amazonaws.com/<stage>`
would be served, with the events API Gateway sends:

- the upgrade request runs `$connect` (after the authorizer, played as the HTTP side plays its JWT authorizer);
  a non-2xx result refuses the connection with that HTTP status, and only then is the connection open;
- each text message runs the route its `RouteSelectionExpression` (`$request.body.action`) names, else
  `$default`, concurrently as API Gateway does; the function's result goes back only on a route with a
  RouteResponse, so a function talks back through @connections;
- a close from either side runs `$disconnect`;
- the `@connections` API (`POST|GET|DELETE /<stage>/@connections/<connection id>`) answers on the same port,
  so `boto3.client("apigatewaymanagementapi", endpoint_url=...)` works unchanged.

API Gateway's limits hold: frames up to 32 KB and messages up to 128 KB (else close 1009), text frames only
(a binary frame closes with 1003), 29 s for an integration. Idle connections stay open.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request
from websockets.http11 import Response as HandshakeResponse
from websockets.sync.server import Server, ServerConnection, serve

from local.devlog import log
from local.routing import Response, gateway_response, new_request_id, write_response
from local.runtime import Invocation
from local.template import WebSocketApiSpec, WebSocketRouteSpec

MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29
OPEN_TIMEOUT_SECONDS = 10  # for the request line and the opening handshake
_REQUEST_LINE_BYTES = 8192
_RESERVED_ROUTES = frozenset({"$connect", "$disconnect", "$default"})


class Integration(Protocol):
    """What a route invokes: a FunctionPool (the tests' fakes too)."""

    def invoke(self, event: Any, deadline: float | None = None) -> Invocation: ...


class LiveConnection(ServerConnection):
    """A client's connection, with what API Gateway keeps of it (set while `$connect` runs)."""

    connection_id: str
    source_ip: str  # kept: the socket has no peer once closed, and $disconnect still names it
    connected_at: float
    last_active_at: float
    authorizer: dict[str, Any] | None


def new_connection_id() -> str:
    """An id shaped like API Gateway's (`L0SM9cOFvHcCIhw=`), safe in a URL path."""
    return base64.b64encode(secrets.token_bytes(11), altchars=b"Ab").decode()


def dev_authorizer(query: Mapping[str, str], headers: Headers, default_user: str) -> dict[str, Any] | None:
    """The context the $connect authorizer returns; None when there is no caller (→ 401).

    LiveAuthorizerFunction is not invoked: locally no JWT is verified (the HTTP side verifies none either),
    so `?user=` stands in for `?token=` as X-Dev-User does for the bearer token, and `?email=` for its claim.
    """
    user = query.get("user") or headers.get("X-Dev-User") or default_user
    if not user:
        return None
    context: dict[str, Any] = {"principalId": user, "sub": user}
    email = query.get("email") or headers.get("X-Dev-Email")
    if email:
        context["email"] = email
    return context | {"integrationLatency": 0}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _management_error(status: int, error_type: str, message: str | None) -> Response:
    """An error of the @connections API, as botocore reads it (`x-amzn-ErrorType` names the exception)."""
    body = json.dumps({"message": message}).encode()
    return Response(status, [("content-type", "application/json"), ("x-amzn-ErrorType", error_type)], body)


def _gone() -> Response:
    """The connection is closed, or never was: GoneException, whose message API Gateway leaves empty."""
    return _management_error(410, "GoneException", None)


def _handshake_response(response: Response) -> HandshakeResponse:
    """A refused upgrade, in websockets' terms."""
    headers = Headers([("Connection", "close"), ("Content-Length", str(len(response.body))), *response.headers])
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    return HandshakeResponse(response.status, reason, headers, response.body)


def _connect_refusal(invocation: Invocation) -> Response | None:
    """The HTTP answer to the upgrade when `$connect`'s integration refuses it; None when it lets it in."""
    if invocation.error is not None:
        return gateway_response(500, "Internal server error")
    result = invocation.result
    if not (isinstance(result, dict) and "statusCode" in result):
        return None
    status = int(result["statusCode"])
    if 200 <= status < 300:
        return None
    body = result.get("body")
    return Response(status, [("content-type", "text/plain")], body.encode() if isinstance(body, str) else b"")


def _request_line(sock: socket.socket) -> bytes:
    """The first line of what the client sends, peeked (left in place for whoever serves it); b"" if none."""
    deadline = time.monotonic() + OPEN_TIMEOUT_SECONDS
    sock.settimeout(OPEN_TIMEOUT_SECONDS)
    try:
        while True:
            head = sock.recv(_REQUEST_LINE_BYTES, socket.MSG_PEEK)
            if b"\n" in head or not head or len(head) == _REQUEST_LINE_BYTES or time.monotonic() > deadline:
                return head.partition(b"\n")[0]
            time.sleep(0.01)  # a request line split across TCP segments: wait for the rest
    except OSError:
        return b""
    finally:
        sock.settimeout(None)


class LiveGateway:
    """One WebSocket API in front of the stack's functions."""

    def __init__(self, api: WebSocketApiSpec, functions: Mapping[str, Integration], dev_user: str) -> None:
        self.api = api
        self.dev_user = dev_user
        self._functions = functions  # by logical id
        self._open: dict[str, LiveConnection] = {}
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- the server ------------------------------------------------------------------------------------

    def start(self, listener: socket.socket) -> None:
        """Serve on `listener` (bound and listening) in a thread of its own."""
        server = serve(
            self._session,
            sock=listener,
            process_request=self._handshake,
            create_connection=LiveConnection,
            compression=None,  # API Gateway negotiates no permessage-deflate
            max_size=(MAX_MESSAGE_BYTES, MAX_FRAME_BYTES),
            ping_interval=None,  # API Gateway sends no pings (it answers the client's)
            open_timeout=OPEN_TIMEOUT_SECONDS,
            server_header=None,
        )
        websocket_handler = server.handler

        def accept(sock: socket.socket, address: Any) -> None:
            # websockets reads GET requests only: the @connections API's POST and DELETE (and its GET, to keep
            # it in one place) are plain HTTP requests on the same port, told apart by their request line.
            line = _request_line(sock)
            if line.startswith(b"GET ") and b"/@connections/" not in line:
                websocket_handler(sock, address)
                return
            try:
                with contextlib.suppress(OSError):  # the client went away: nobody to answer
                    _ManagementRequest(sock, address, self)
            finally:
                sock.close()
                with server.lock:  # what websockets' own handler does on the way out, or shutdown() would wait
                    server.handler_threads.discard(threading.current_thread())

        server.handler = accept
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="live-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close every connection (1001, going away; each runs `$disconnect`) and stop listening."""
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the connection's life -------------------------------------------------------------------------

    def _handshake(self, connection: ServerConnection, request: Request) -> HandshakeResponse | None:
        """`$connect`, while the upgrade request waits: the 101 that opens the connection, or a refusal."""
        assert isinstance(connection, LiveConnection)
        started = time.perf_counter()
        path, _, query_string = request.path.partition("?")
        if path.rstrip("/") not in ("", f"/{self.api.stage}"):
            # The stage is the path, as in AWS; locally `/` works too (API.md names ws://127.0.0.1:<WS_PORT>).
            return _handshake_response(gateway_response(403, "Forbidden"))
        accepted = connection.protocol.accept(request)
        if accepted.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            return accepted  # not a WebSocket upgrade: websockets' own answer (400, 426)
        now = time.time()
        connection.connection_id = new_connection_id()
        connection.source_ip = connection.remote_address[0]
        connection.connected_at = connection.last_active_at = now
        connection.authorizer = None
        pairs = parse_qsl(query_string, keep_blank_values=True)
        route = self.api.routes.get("$connect")
        if route is not None and route.authorized:
            connection.authorizer = dev_authorizer(dict(pairs), request.headers, self.dev_user)
            if connection.authorizer is None:
                self._log("$connect", 401, started, connection)
                return _handshake_response(gateway_response(401, "Unauthorized"))
        if route is None:
            self._log("$connect", 101, started, connection)
            return accepted
        event = self._request_fields(connection, request, pairs) | self._event(connection, route.key, "CONNECT", now)
        event["isBase64Encoded"] = False
        invocation = self._invoke(route, event)
        refusal = _connect_refusal(invocation)
        if refusal is not None:
            self._log("$connect", refusal.status, started, connection, route)
            return _handshake_response(refusal)
        # A subprotocol the function chose goes back in the 101, as API Gateway passes it on.
        result = invocation.result if isinstance(invocation.result, dict) else {}
        headers = {str(name).lower(): value for name, value in (result.get("headers") or {}).items()}
        if "sec-websocket-protocol" in headers:
            accepted.headers["Sec-WebSocket-Protocol"] = str(headers["sec-websocket-protocol"])
        self._log("$connect", 101, started, connection, route)
        return accepted

    def _session(self, connection: ServerConnection) -> None:
        """An open connection: its messages until either side closes it, then `$disconnect`."""
        assert isinstance(connection, LiveConnection)
        with self._lock:
            self._open[connection.connection_id] = connection
        try:
            while True:
                try:
                    message = connection.recv()
                except ConnectionClosed:
                    break
                connection.last_active_at = time.time()
                if isinstance(message, bytes):
                    connection.close(CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
                    continue
                # API Gateway invokes for each message as it comes, without waiting for the previous one.
                threading.Thread(target=self._message, args=(connection, message), daemon=True).start()
        finally:
            with self._lock:
                self._open.pop(connection.connection_id, None)
        self._disconnect(connection)

    def route_key(self, body: str) -> str:
        """The route for a message: the custom route the selection expression names in its JSON, else `$default`."""
        try:
            value: Any = json.loads(body)
        except ValueError:
            return "$default"
        for name in self.api.selection_path:
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, str) and value in self.api.routes and value not in _RESERVED_ROUTES:
            return value
        return "$default"

    def _message(self, connection: LiveConnection, body: str) -> None:
        started = time.perf_counter()
        route = self.api.routes.get(self.route_key(body))
        event = self._event(connection, route.key if route else "$default", "MESSAGE", time.time())
        event["requestContext"]["messageId"] = new_request_id()
        event |= {"body": body, "isBase64Encoded": False}
        request_id = event["requestContext"]["requestId"]
        if route is None:  # no route and no $default: API Gateway answers the client itself
            self._reply(
                connection, {"message": "Forbidden", "connectionId": connection.connection_id, "requestId": request_id}
            )
            self._log("$default", 403, started, connection)
            return
        invocation = self._invoke(route, event)
        if invocation.failed:
            error = {
                "message": "Internal server error",
                "connectionId": connection.connection_id,
                "requestId": request_id,
            }
            self._reply(connection, error)
        elif route.responds and isinstance(invocation.result, dict) and invocation.result.get("body") is not None:
            self._reply(connection, invocation.result["body"])
        self._log(route.key, "error" if invocation.failed else "ok", started, connection, route)

    def _disconnect(self, connection: LiveConnection) -> None:
        route = self.api.routes.get("$disconnect")
        if route is None:
            return
        started = time.perf_counter()
        event = self._event(connection, route.key, "DISCONNECT", time.time())
        protocol = connection.protocol
        # The close that ended it: ours when the gateway closed first (1009, 1003, a DELETE), else the client's.
        ours = protocol.close_sent is not None and not protocol.close_rcvd_then_sent
        close = protocol.close_sent if ours else protocol.close_rcvd
        event["requestContext"] |= {
            "disconnectStatusCode": int(close.code) if close else int(CloseCode.ABNORMAL_CLOSURE),
            "disconnectReason": close.reason if close else "",
        }
        host = connection.request.headers.get("Host", "") if connection.request else ""
        headers = {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}  # what API Gateway sends
        event |= {"headers": headers, "multiValueHeaders": {name: [value] for name, value in headers.items()}}
        event["isBase64Encoded"] = False
        invocation = self._invoke(route, event)  # best effort, as in AWS: nobody is left to tell of a failure
        self._log(route.key, "error" if invocation.failed else "ok", started, connection, route)

    # -- events ----------------------------------------------------------------------------------------

    def _event(self, connection: LiveConnection, route_key: str, event_type: str, now: float) -> dict[str, Any]:
        """An event with the requestContext API Gateway sends on every route."""
        assert connection.request is not None
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": new_request_id(),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "connectedAt": int(connection.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "sourceIp": connection.source_ip,
                "userAgent": connection.request.headers.get("User-Agent", ""),
            },
            "requestId": new_request_id(),
            # The Host header, as the HTTP side reads it (with the port: the address that reaches this gateway).
            "domainName": connection.request.headers.get("Host", ""),
            "connectionId": connection.connection_id,
            "apiId": self.api.api_id,
        }
        if connection.authorizer is not None:
            context["authorizer"] = dict(connection.authorizer)
        return {"requestContext": context}

    def _request_fields(
        self, connection: LiveConnection, request: Request, query: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """The upgrade request's headers and query string, in the shape of `$connect`'s event."""
        received = [*request.headers.raw_items()]
        received += [
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"),
            ("X-Forwarded-For", connection.source_ip),
            ("X-Forwarded-Port", str(connection.local_address[1])),
            ("X-Forwarded-Proto", "http"),
        ]
        multi_value_headers: dict[str, list[str]] = {}
        for name, value in received:
            multi_value_headers.setdefault(name, []).append(value)
        multi_value_query: dict[str, list[str]] = {}
        for name, value in query:
            multi_value_query.setdefault(name, []).append(value)
        return {
            "headers": {name: values[-1] for name, values in multi_value_headers.items()},
            "multiValueHeaders": multi_value_headers,
            "queryStringParameters": {name: values[-1] for name, values in multi_value_query.items()} or None,
            "multiValueQueryStringParameters": multi_value_query or None,
        }

    def _invoke(self, route: WebSocketRouteSpec, event: dict[str, Any]) -> Invocation:
        return self._functions[route.function].invoke(event, deadline=time.monotonic() + INTEGRATION_TIMEOUT_SECONDS)

    # -- talking to the client -------------------------------------------------------------------------

    def _reply(self, connection: LiveConnection, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        with contextlib.suppress(ConnectionClosed):  # gone meanwhile: $disconnect tells the function
            connection.send(text)
        connection.last_active_at = time.time()

    def manage(self, method: str, target: str, body: bytes) -> Response:
        """A request to the @connections API: `<method> /<stage>/@connections/<connection id>`."""
        started = time.perf_counter()
        path = urlsplit(target).path
        prefix = f"/{self.api.stage}/@connections/"
        connection_id = unquote(path.removeprefix(prefix))
        if not path.startswith(prefix) or not connection_id or "/" in connection_id:
            response = _management_error(403, "ForbiddenException", "Forbidden")
        else:
            response = self._manage(method, connection_id, body)
        response = Response(response.status, [*response.headers, ("x-amzn-RequestId", new_request_id())], response.body)
        milliseconds = (time.perf_counter() - started) * 1000
        log("WS", method, unquote(path), response.status, f"{milliseconds:.0f}ms", "-")
        return response

    def _manage(self, method: str, connection_id: str, body: bytes) -> Response:
        with self._lock:
            connection = self._open.get(connection_id)
        if connection is None:
            return _gone()
        match method:
            case "POST":
                if len(body) > MAX_MESSAGE_BYTES:
                    return _management_error(413, "PayloadTooLargeException", "Message too long")
                try:
                    data: str | bytes = body.decode()  # a text frame when it is text, as JSON is
                except UnicodeDecodeError:
                    data = body
                try:
                    connection.send(data)
                except ConnectionClosed:
                    return _gone()
                connection.last_active_at = time.time()
                return Response(200, [("content-type", "application/json")])
            case "GET":
                assert connection.request is not None
                description = {
                    "connectedAt": _iso(connection.connected_at),
                    "identity": {
                        "sourceIp": connection.source_ip,
                        "userAgent": connection.request.headers.get("User-Agent", ""),
                    },
                    "lastActiveAt": _iso(connection.last_active_at),
                }
                return Response(200, [("content-type", "application/json")], json.dumps(description).encode())
            case "DELETE":
                connection.close()  # the session sees the close and runs $disconnect
                return Response(204)
        return _management_error(403, "ForbiddenException", "Forbidden")

    def _log(
        self,
        route_key: str,
        outcome: int | str,
        started: float,
        connection: LiveConnection,
        route: WebSocketRouteSpec | None = None,
    ) -> None:
        milliseconds = (time.perf_counter() - started) * 1000
        function = route.function if route else "-"
        log("WS", route_key, connection.connection_id, outcome, f"{milliseconds:.0f}ms", function)


class _ManagementRequest(BaseHTTPRequestHandler):
    """One request to the @connections API; HTTP/1.0, so the TCP connection ends with it."""

    def __init__(self, sock: socket.socket, address: Any, gateway: LiveGateway) -> None:
        self.gateway = gateway
        super().__init__(sock, address, None)  # type: ignore[arg-type]  # websockets' server accepted it

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        write_response(self, self.gateway.manage(self.command, self.path, body))

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # manage() logs the gateway's own line
