"""The Lambda Runtime API inside the sandbox (runtime-api.md §1), for runtimes that are not our
built-in Python one: a `bootstrap` executable, the official runtime interface clients, Node.js.

The process that would have become the Python runtime (C) becomes this bridge instead: it
listens on 127.0.0.1:9001 in the environment's own network namespace, starts the bootstrap with
AWS_LAMBDA_RUNTIME_API pointing there, and translates between HTTP and the private channel to
the server (READY at the first `next`, INVOKE -> `next`, `response` -> RESULT, `error` -> ERROR,
`init/error` -> INIT_ERROR). When the bootstrap dies, the bridge dies the same way, so the server
sees the runtime's own exit status. Standard library only; one thread, one `selectors` loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from lamina_inside import channel

PREFERRED_PORT = 9001  # what AWS and the emulator use; any free port without a namespace
MAX_RESPONSE = 6 * 1024 * 1024 + 100  # runtime-api.md §1.3: 6 MiB + 100 bytes
MAX_REQUEST = MAX_RESPONSE + 1024 * 1024  # a guard against garbage, above every legal body
_INVOCATION = re.compile(r"^/2018-06-01/runtime/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")
_ERROR_TYPE = re.compile(r"^(Runtime|Function)\.[A-Z][a-zA-Z]+$")
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            413: "Request Entity Too Large", 500: "Internal Server Error"}  # fmt: skip


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Connection:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    continued: bool = False  # "100 Continue" sent for the request being read


class Bridge:
    def __init__(self, chan: socket.socket, argv: list[str], env: dict[str, str]) -> None:
        self._channel = chan
        self._argv = argv
        self._env = env
        self._selector = selectors.DefaultSelector()
        self._listener = _listen()
        self._started = time.perf_counter()
        self._initialized = False
        self._parked: _Connection | None = None  # a `next` waiting for an invocation
        self._pending: tuple[dict[str, Any], bytes] | None = None  # an invocation to hand out
        self._current: str | None = None  # the request id being served
        self._finished: set[str] = set()

    def run(self) -> NoReturn:
        port = self._listener.getsockname()[1]
        env = {**self._env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"}
        try:
            pid = os.posix_spawn(self._argv[0], self._argv, env)
        except OSError as error:  # the wording of AWS's (Go) runtime layer
            if isinstance(error, FileNotFoundError):
                message = f"Couldn't find valid bootstrap(s): [{self._argv[0]}]"
            else:
                message = f"fork/exec {self._argv[0]}: {(error.strerror or '').lower()}"
            self._init_failed("Runtime.InvalidEntrypoint", message)
            os._exit(126)
        pidfd = os.pidfd_open(pid)
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._channel, selectors.EVENT_READ, "channel")
        self._selector.register(pidfd, selectors.EVENT_READ, "exit")
        while True:
            for key, _ in self._selector.select():
                if key.data == "accept":
                    self._accept()
                elif key.data == "channel":
                    self._from_server()
                elif key.data == "exit":
                    _die_like(os.waitpid(pid, 0)[1])
                else:
                    self._from_runtime(key.data)

    # --- the server side -----------------------------------------------------------------------

    def _from_server(self) -> None:
        try:
            kind, header, payload = channel.recv(self._channel)
        except (channel.ChannelClosed, OSError):
            os._exit(0)  # the server let this environment go
        if kind == channel.INVOKE:
            self._pending = (header, payload)
            if self._parked is not None:
                parked, self._parked = self._parked, None
                self._hand_out(parked)

    def _hand_out(self, connection: _Connection) -> None:
        assert self._pending is not None
        header, payload = self._pending
        self._pending = None
        self._current = str(header["request_id"])
        headers = {
            "Lambda-Runtime-Aws-Request-Id": self._current,
            "Lambda-Runtime-Deadline-Ms": str(int(header["deadline_ms"])),
            "Lambda-Runtime-Invoked-Function-Arn": str(header.get("invoked_function_arn") or ""),
            "Lambda-Runtime-Trace-Id": str(header.get("trace_id") or ""),
            "Lambda-Runtime-Client-Context": str(header.get("client_context") or ""),
            "Lambda-Runtime-Cognito-Identity": str(header.get("cognito_identity") or ""),
            "Lambda-Runtime-Aws-Tenant-Id": str(header.get("tenant_id") or ""),
        }
        self._reply(connection, 200, payload, {k: v for k, v in headers.items() if v})

    def _init_failed(self, error_type: str, message: str) -> None:
        doc = {"errorType": error_type, "errorMessage": message}
        channel.send(self._channel, channel.INIT_ERROR, doc, json.dumps(doc).encode())

    # --- the runtime side ----------------------------------------------------------------------

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ, connection)

    def _from_runtime(self, connection: _Connection) -> None:
        try:
            chunk = connection.sock.recv(262144)
            # Acknowledge at once: a client that writes a request in two pieces without
            # TCP_NODELAY would otherwise wait out our delayed ACK (40 ms) on every response.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(connection)
            return
        connection.buffer += chunk
        while True:
            try:
                request = _parse(connection)
            except (ValueError, OSError):  # garbage or a runaway body: drop the connection
                self._close(connection)
                return
            if request is None:
                return
            self._route(connection, request)

    def _route(self, connection: _Connection, request: _Request) -> None:
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path == "/2018-06-01/runtime/invocation/next":
            self._next(connection)
        elif request.method == "POST" and path == "/2018-06-01/runtime/init/error":
            self._init_error(connection, request)
        elif request.method == "POST" and (match := _INVOCATION.match(path)):
            self._finish(connection, request, match["id"], match["what"])
        else:
            self._fail(connection, 404, "NotFound", f"No Runtime API endpoint at {path}")

    def _next(self, connection: _Connection) -> None:
        if not self._initialized:
            self._initialized = True
            init_ms = (time.perf_counter() - self._started) * 1000
            channel.send(self._channel, channel.READY, {"init_ms": init_ms})
        if self._current is not None:
            self._fail(
                connection,
                403,
                "InvalidStateTransition",
                "State transition from Running to Ready failed for runtime. Error: the "
                f"invocation {self._current} has neither a response nor an error yet",
            )
        elif self._pending is not None:
            self._hand_out(connection)
        else:
            self._parked = connection  # long poll: no read timeout, as AWS says

    def _finish(
        self, connection: _Connection, request: _Request, request_id: str, what: str
    ) -> None:
        if request_id != self._current:
            if self._current is None and request_id not in self._finished:
                self._fail(
                    connection,
                    403,
                    "InvalidStateTransition",
                    f"State transition from Ready to Response failed for runtime. Error: no "
                    f"invocation {request_id} is in progress",
                )
            else:  # runtime-api.md §1.3: an unknown id, or a second answer for the same one
                self._fail(connection, 400, "InvalidRequestID", "Invalid request ID")
            return
        self._current = None
        self._finished.add(request_id)
        if what == "error":
            doc, body = _error_document(request)
            channel.send(
                self._channel, channel.ERROR, {**doc, "error_type": doc["errorType"]}, body
            )
        elif len(request.body) > MAX_RESPONSE:
            doc = {
                "errorMessage": "Response payload size exceeded maximum allowed payload size "
                f"({MAX_RESPONSE} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            channel.send(self._channel, channel.ERROR, {**doc, "error_type": doc["errorType"]},
                         json.dumps(doc).encode())  # fmt: skip
            self._fail(
                connection,
                413,
                "RequestEntityTooLarge",
                f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
            )
            return
        else:
            content_type = request.headers.get("content-type", "application/json")
            channel.send(
                self._channel, channel.RESULT, {"content_type": content_type}, request.body
            )
        self._reply(connection, 202, b'{"status":"OK"}')

    def _init_error(self, connection: _Connection, request: _Request) -> None:
        if self._initialized:
            self._fail(
                connection,
                403,
                "InvalidStateTransition",
                "State transition from Ready to InitError failed for runtime. Error: init is over",
            )
            return
        self._initialized = True  # a second init/error, or a `next`, is now out of order
        doc, body = _error_document(request)
        channel.send(self._channel, channel.INIT_ERROR, doc, body)
        self._reply(connection, 202, b'{"status":"OK"}')

    # --- HTTP ------------------------------------------------------------------------------------

    def _fail(self, connection: _Connection, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self._reply(connection, status, body)

    def _reply(
        self,
        connection: _Connection,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                "Content-Type: application/json", f"Content-Length: {len(body)}"]  # fmt: skip
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        connection.sock.setblocking(True)  # the runtime reads what it asked for
        try:
            connection.sock.sendall(data)
        except OSError:
            self._close(connection)
            return
        connection.sock.setblocking(False)

    def _close(self, connection: _Connection) -> None:
        if self._parked is connection:
            self._parked = None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()


def _listen() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", PREFERRED_PORT))
    except OSError:  # no network namespace of our own (rlimits isolation): any free port
        listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def _parse(connection: _Connection) -> _Request | None:
    """One complete request from the buffer (Content-Length or chunked), or None for now."""
    buffer = connection.buffer
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > 65536:
            raise ValueError("request head too large")
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    method, path, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + 4
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parsed = _dechunk(buffer, start)
        if parsed is None:
            return None
        body, consumed = parsed
    else:
        length = int(headers.get("content-length") or 0)
        if length > MAX_REQUEST:
            raise ValueError("request body too large")
        if len(buffer) - start < length:
            if headers.get("expect", "").lower() == "100-continue" and not connection.continued:
                connection.continued = True  # curl (the C++ and Python clients) waits for it
                connection.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        connection.continued = False
        body, consumed = bytes(buffer[start : start + length]), start + length
    del buffer[:consumed]
    return _Request(method, path, headers, body)


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0] or b"0", 16)
        at = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", at)
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at : at + size]
        at += size + 2


def _error_document(request: _Request) -> tuple[dict[str, Any], bytes]:
    """The error the caller sees: the posted JSON document verbatim (runtime-api.md §1.4); a body
    that is not one becomes a document built from Lambda-Runtime-Function-Error-Type, as the
    Runtime API's OpenAPI description says Lambda does when no error payload is given."""
    declared = request.headers.get("lambda-runtime-function-error-type", "")
    try:
        doc = json.loads(request.body) if request.body.strip() else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        error_type = str(doc.get("errorType") or declared or "Runtime.Unknown")
        return {**doc, "errorType": error_type}, request.body
    if not _ERROR_TYPE.match(declared):
        declared = "Function.Unknown" if declared.startswith("Function.") else "Runtime.Unknown"
    message = request.body.decode("utf-8", "replace")[:4096]
    built = {"errorType": declared, "errorMessage": message}
    return built, json.dumps(built).encode()


def _die_like(status: int) -> NoReturn:
    """Exit as the bootstrap did, so the server reports its exit code or signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 1)


def serve(chan: socket.socket, argv: list[str], env: dict[str, str]) -> NoReturn:
    Bridge(chan, argv, env).run()
