"""The Lambda Runtime API inside the sandbox (runtime-api.md §1), for runtimes that are not our
built-in Python one: a `bootstrap` executable, the official runtime interface clients, Node.js.

The process that would have become the Python runtime (C) becomes this bridge instead: it
listens on 127.0.0.1:9001 in the environment's own network namespace, starts the bootstrap with
AWS_LAMBDA_RUNTIME_API pointing there, and translates between HTTP and the private channel to
the server (READY at the first `next`, INVOKE -> `next`, `response` -> RESULT, `error` -> ERROR,
`init/error` -> INIT_ERROR). When the bootstrap dies, the bridge dies the same way, so the server
sees the runtime's own exit status. Standard library only; one thread, one `selectors` loop.

It also serves the Extensions API (runtime-api.md §2, §4): executables in /opt/extensions start
first and register; then the runtime starts; init is done when the runtime and every extension
wait for their next event; each invocation goes to the runtime and, as an INVOKE event, to the
extensions that asked for it, and the next one waits until they all wait again; SHUTDOWN (from
the server, when it retires the environment) goes to the extensions, which get 2 s to exit.
A Python function with extensions runs our Python runtime in a child of the bridge, over a
private channel of its own, so that extensions see the same API as with any other runtime.
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
import uuid
from dataclasses import dataclass, field
from typing import Any, NoReturn

from lamina_inside import channel

PREFERRED_PORT = 9001  # what AWS and the emulator use; any free port without a namespace
MAX_RESPONSE = 6 * 1024 * 1024 + 100  # runtime-api.md §1.3: 6 MiB + 100 bytes
MAX_REQUEST = MAX_RESPONSE + 1024 * 1024  # a guard against garbage, above every legal body
_INVOCATION = re.compile(r"^/2018-06-01/runtime/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")
_ERROR_TYPE = re.compile(r"^(Runtime|Function)\.[A-Z][a-zA-Z]+$")
EXTENSIONS_DIR = "/opt/extensions"
MAX_EXTENSIONS = 10  # runtime-api.md §2
SHUTDOWN_S = 2.0  # the shutdown window with external extensions
_EXTENSION = "/2020-01-01/extension/"
_EXTENSION_EVENTS = frozenset({"INVOKE", "SHUTDOWN"})
# Variables extensions do not see (runtime-api.md §2.3), besides every one starting with "_".
_HIDDEN_FROM_EXTENSIONS = frozenset({
    "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
})  # fmt: skip
# What a process we start has at its default: every signal (Python ignores SIGPIPE and SIGXFSZ,
# and an ignored signal stays ignored across exec, so `yes | head -n 1` would print "Broken pipe"
# where it should end quietly). AWS's init is a Go program, which ignores none; Python's own
# subprocess restores these for the same reason (`restore_signals`). None is blocked either.
_AT_DEFAULT = frozenset(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP})
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


@dataclass
class _Extension:
    name: str
    pid: int
    identifier: str | None = None  # once registered
    events: frozenset[str] = frozenset()
    waiting: _Connection | None = None  # its parked `event/next`
    queued: list[dict[str, Any]] = field(default_factory=list)
    waited: bool = False  # it has called `event/next` since its last event (or ever, at init)
    exited: bool = False


@dataclass(frozen=True)
class PythonRuntime:
    """Our own Python runtime, run in a child of the bridge (a Python function with
    extensions)."""

    handler: str
    task_root: str
    opt_roots: tuple[str, ...]


class Bridge:
    def __init__(
        self,
        chan: socket.socket,
        runtime: list[str] | PythonRuntime,
        env: dict[str, str],
        extensions_dir: str = EXTENSIONS_DIR,
    ) -> None:
        self._channel = chan
        self._runtime = runtime  # a bootstrap's argv, or our Python runtime
        self._env = env
        self._extensions_dir = extensions_dir
        self._selector = selectors.DefaultSelector()
        self._listener = _listen()
        self._api = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._started = time.perf_counter()
        self._initialized = False  # the runtime has called `next` (or failed its init)
        self._ready_sent = False
        self._parked: _Connection | None = None  # a `next` waiting for an invocation
        self._frames: socket.socket | None = None  # our Python runtime's channel
        self._frames_idle = False
        self._runtime_pid: int | None = None
        self._pending: tuple[dict[str, Any], bytes] | None = None  # an invocation to hand out
        self._current: str | None = None  # the request id being served
        self._finished: set[str] = set()
        self._extensions: list[_Extension] = []
        self._registration_open = True
        self._shutdown_deadline: float | None = None

    def run(self) -> NoReturn:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._channel, selectors.EVENT_READ, "channel")
        self._launch_extensions()
        if not self._extensions:
            self._start_runtime()
        while True:
            timeout = None
            if self._shutdown_deadline is not None:
                timeout = max(0.0, self._shutdown_deadline - time.monotonic())
                if timeout == 0.0 or all(e.exited for e in self._extensions):
                    os._exit(0)
            for key, _ in self._selector.select(timeout):
                self._event(key.data)

    def _event(self, data: Any) -> None:
        if data == "accept":
            self._accept()
        elif data == "channel":
            self._from_server()
        elif data == "frames":
            self._from_python_runtime()
        elif isinstance(data, tuple) and data[0] == "exit":
            self._exited(data[1], data[2])
        else:
            self._from_runtime(data)

    # --- processes -------------------------------------------------------------------------------

    def _start_runtime(self) -> None:
        self._registration_open = False
        runtime = self._runtime
        if isinstance(runtime, PythonRuntime):
            self._fork_python_runtime(runtime)
            return
        env = {**self._env, "AWS_LAMBDA_RUNTIME_API": self._api}
        try:
            pid = _spawn(runtime[0], runtime, env)
        except OSError as error:  # the wording of AWS's (Go) runtime layer
            if isinstance(error, FileNotFoundError):
                message = f"Couldn't find valid bootstrap(s): [{runtime[0]}]"
            else:
                message = f"fork/exec {runtime[0]}: {(error.strerror or '').lower()}"
            self._init_failed("Runtime.InvalidEntrypoint", message)
            os._exit(126)
        self._watch(pid, "runtime")

    def _fork_python_runtime(self, runtime: PythonRuntime) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # the runtime: nothing of the bridge stays open in it
            ours.close()
            self._listener.close()
            self._channel.close()
            from lamina_inside import python_runtime

            python_runtime.run(theirs, runtime.handler, runtime.task_root, runtime.opt_roots)
        theirs.close()
        self._frames = ours
        self._selector.register(ours, selectors.EVENT_READ, "frames")
        self._watch(pid, "runtime")

    def _launch_extensions(self) -> None:
        try:
            names = sorted(os.listdir(self._extensions_dir))
        except OSError:
            return
        env = {
            k: v
            for k, v in self._env.items()
            if not k.startswith("_") and k not in _HIDDEN_FROM_EXTENSIONS
        }
        env["AWS_LAMBDA_RUNTIME_API"] = self._api
        for name in names[:MAX_EXTENSIONS]:
            path = os.path.join(self._extensions_dir, name)
            if not os.path.isfile(path):
                continue
            try:
                pid = _spawn(path, [path], env)
            except OSError as error:
                self._init_failed(
                    "Extension.LaunchError", f"fork/exec {path}: {(error.strerror or '').lower()}"
                )
                os._exit(126)
            self._extensions.append(_Extension(name, pid))
            self._watch(pid, "extension")

    def _watch(self, pid: int, role: str) -> None:
        pidfd = os.pidfd_open(pid)
        if role == "runtime":
            self._runtime_pid = pid
        self._selector.register(pidfd, selectors.EVENT_READ, ("exit", pid, role))

    def _exited(self, pid: int, role: str) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data == ("exit", pid, role):  # a pidfd stays readable: watch it no more
                self._selector.unregister(key.fileobj)
                os.close(key.fd)
        status = os.waitpid(pid, 0)[1]
        if role == "runtime":
            if self._shutdown_deadline is None:
                _die_like(status)  # the server reports the runtime's own exit
            return
        extension = next(e for e in self._extensions if e.pid == pid)
        extension.exited = True
        if extension.identifier is None and self._shutdown_deadline is None:
            code = os.waitstatus_to_exitcode(status)
            self._init_failed(
                "Extension.Crash",
                f"Extension {extension.name} exited before it registered (exit status {code})",
            )
            os._exit(70)

    # --- the server side -----------------------------------------------------------------------

    def _from_server(self) -> None:
        try:
            kind, header, payload = channel.recv(self._channel)
        except (channel.ChannelClosed, OSError):
            os._exit(0)  # the server let this environment go
        if kind == channel.INVOKE:
            self._pending = (header, payload)
            self._dispatch()
        elif kind == channel.SHUTDOWN:
            self._shutdown()

    def _dispatch(self) -> None:
        """Hand the pending invocation out once the runtime and every extension wait."""
        if self._pending is None or not all(e.waited or e.exited for e in self._extensions):
            return
        header, payload = self._pending
        if self._frames is not None:
            if not self._frames_idle:
                return
            self._frames_idle = False
            self._pending = None
            channel.send(self._frames, channel.INVOKE, header, payload)
        elif self._parked is not None:
            parked, self._parked = self._parked, None
            self._hand_out(parked)
        else:
            return
        event: dict[str, Any] = {
            "eventType": "INVOKE",
            "deadlineMs": int(header["deadline_ms"]),
            "requestId": str(header["request_id"]),
            "invokedFunctionArn": str(header.get("invoked_function_arn") or ""),
        }
        if header.get("trace_id"):
            event["tracing"] = {"type": "X-Amzn-Trace-Id", "value": str(header["trace_id"])}
        for extension in self._extensions:
            if "INVOKE" in extension.events and not extension.exited:
                self._send_event(extension, event)

    def _maybe_ready(self) -> None:
        """Init is over when the runtime and every extension wait for their next event."""
        if self._ready_sent or not self._initialized:
            return
        if all(e.waited or e.exited for e in self._extensions):
            self._ready_sent = True
            init_ms = (time.perf_counter() - self._started) * 1000
            channel.send(self._channel, channel.READY, {"init_ms": init_ms})

    def _shutdown(self) -> None:
        """The server retires this environment: the runtime goes, the extensions get SHUTDOWN
        and up to 2 s to exit."""
        self._shutdown_deadline = time.monotonic() + SHUTDOWN_S
        if self._runtime_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._runtime_pid, signal.SIGKILL)
        event = {
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": int((time.time() + SHUTDOWN_S) * 1000),
        }
        for extension in self._extensions:
            if "SHUTDOWN" in extension.events and not extension.exited:
                self._send_event(extension, event)

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

    # --- our Python runtime (a function with extensions) -----------------------------------------

    def _from_python_runtime(self) -> None:
        assert self._frames is not None
        try:
            kind, header, payload = channel.recv(self._frames)
        except (channel.ChannelClosed, OSError):
            self._selector.unregister(self._frames)
            self._frames.close()
            self._frames = None  # its exit follows
            return
        if kind == channel.READY:
            self._initialized = True
            self._frames_idle = True
            self._maybe_ready()
            self._dispatch()
            return
        channel.send(self._channel, kind, header, payload)  # RESULT, ERROR, INIT_ERROR
        if kind in (channel.RESULT, channel.ERROR):
            self._frames_idle = True
            self._dispatch()

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
        if path.startswith(_EXTENSION):
            self._extension_api(connection, request, path[len(_EXTENSION) :])
        elif request.method == "GET" and path == "/2018-06-01/runtime/invocation/next":
            self._next(connection)
        elif request.method == "POST" and path == "/2018-06-01/runtime/init/error":
            self._init_error(connection, request)
        elif request.method == "POST" and (match := _INVOCATION.match(path)):
            self._finish(connection, request, match["id"], match["what"])
        else:
            self._fail(connection, 404, "NotFound", f"No Runtime API endpoint at {path}")

    def _next(self, connection: _Connection) -> None:
        if self._current is not None:
            self._fail(
                connection,
                403,
                "InvalidStateTransition",
                "State transition from Running to Ready failed for runtime. Error: the "
                f"invocation {self._current} has neither a response nor an error yet",
            )
            return
        self._parked = connection  # long poll: no read timeout, as AWS says
        self._initialized = True
        self._maybe_ready()
        self._dispatch()

    # --- the Extensions API ----------------------------------------------------------------------

    def _extension_api(self, connection: _Connection, request: _Request, action: str) -> None:
        if request.method == "POST" and action == "register":
            self._register(connection, request)
            return
        if action not in ("event/next", "init/error", "exit/error"):
            self._fail(connection, 404, "NotFound", f"No Extensions API endpoint {action}")
            return
        identifier = request.headers.get("lambda-extension-identifier")
        if not identifier:
            self._fail(connection, 403, "Extension.MissingExtensionIdentifier",
                       "Missing Lambda-Extension-Identifier header")  # fmt: skip
            return
        extension = next((e for e in self._extensions if e.identifier == identifier), None)
        if extension is None:
            self._fail(connection, 403, "Extension.UnknownExtensionIdentifier",
                       "Unknown extension " + identifier)  # fmt: skip
            return
        if action == "event/next" and request.method == "GET":
            self._event_next(extension, connection)
            return
        error_type = request.headers.get("lambda-extension-function-error-type")
        if request.method != "POST" or not error_type:
            self._fail(connection, 403, "Extension.MissingHeader",
                       "Missing Lambda-Extension-Function-Error-Type header")  # fmt: skip
            return
        self._reply(connection, 202, b'{"status":"OK"}')
        if action == "init/error" and not self._ready_sent:
            self._init_failed(error_type, f"Extension {extension.name} failed to initialize")
            os._exit(70)

    def _register(self, connection: _Connection, request: _Request) -> None:
        name = request.headers.get("lambda-extension-name", "")
        if not self._registration_open:
            self._fail(connection, 403, "Extension.RegistrationClosed",
                       "Extensions may register only during init")  # fmt: skip
            return
        extension = next(
            (e for e in self._extensions if e.name == name and e.identifier is None), None
        )
        if not name or extension is None:
            self._fail(connection, 403, "Extension.InvalidExtensionName",
                       f"No extension executable named {name!r} awaits registration")  # fmt: skip
            return
        try:
            events = json.loads(request.body or b"{}").get("events", [])
        except (ValueError, AttributeError):
            self._fail(connection, 403, "InvalidRequestFormat", "Cannot parse the request body")
            return
        if not isinstance(events, list) or not set(events) <= _EXTENSION_EVENTS:
            self._fail(connection, 403, "Extension.InvalidEventType",
                       f"Unknown event types: {events}")  # fmt: skip
            return
        extension.identifier = str(uuid.uuid4())
        extension.events = frozenset(events)
        info: dict[str, str] = {
            "functionName": self._env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            "functionVersion": self._env.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
            "handler": self._env.get("_HANDLER", ""),
        }
        if request.headers.get("lambda-extension-accept-feature") == "accountId":
            info["accountId"] = self._env.get("AWS_ACCOUNT_ID", "")
        self._reply(connection, 200, json.dumps(info).encode(),
                    {"Lambda-Extension-Identifier": extension.identifier})  # fmt: skip
        if all(e.identifier is not None or e.exited for e in self._extensions):
            self._start_runtime()  # every extension has registered: runtime init begins

    def _event_next(self, extension: _Extension, connection: _Connection) -> None:
        extension.waited = True
        if extension.queued:
            self._deliver(extension, connection, extension.queued.pop(0))
        else:
            extension.waiting = connection
        self._maybe_ready()
        self._dispatch()

    def _send_event(self, extension: _Extension, event: dict[str, Any]) -> None:
        connection, extension.waiting = extension.waiting, None
        if connection is None:
            extension.queued.append(event)
            extension.waited = False
        else:
            self._deliver(extension, connection, event)

    def _deliver(
        self, extension: _Extension, connection: _Connection, event: dict[str, Any]
    ) -> None:
        extension.waited = False
        headers = {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())}
        self._reply(connection, 200, json.dumps(event).encode(), headers)

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
        try:
            sent = connection.sock.send(data)  # almost always whole: one syscall
            if sent < len(data):  # a large event: the runtime reads what it asked for
                connection.sock.setblocking(True)
                connection.sock.sendall(data[sent:])
                connection.sock.setblocking(False)
        except BlockingIOError:
            connection.sock.setblocking(True)
            try:
                connection.sock.sendall(data)
            except OSError:
                self._close(connection)
                return
            connection.sock.setblocking(False)
        except OSError:
            self._close(connection)

    def _close(self, connection: _Connection) -> None:
        if self._parked is connection:
            self._parked = None
        for extension in self._extensions:
            if extension.waiting is connection:
                extension.waiting = None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()


def _spawn(path: str, argv: list[str], env: dict[str, str]) -> int:
    """Start a runtime or an extension with every signal at its default (`_AT_DEFAULT`)."""
    return os.posix_spawn(path, argv, env, setsigdef=_AT_DEFAULT, setsigmask=())


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
    """A runtime that talks to the Runtime API: `argv` is its bootstrap."""
    Bridge(chan, argv, env).run()


def serve_python(
    chan: socket.socket,
    handler: str,
    task_root: str,
    opt_roots: tuple[str, ...],
    env: dict[str, str],
) -> NoReturn:
    """Our Python runtime behind the bridge, for a function with extensions."""
    Bridge(chan, PythonRuntime(handler, task_root, opt_roots), env).run()
