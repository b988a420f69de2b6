"""The built-in Python runtime: awslambdaric's behaviour, spoken over the private channel.

`run` is called in the sandboxed child (stdout/stderr already the log pipe, the Lambda
environment variables already set). It loads the handler the way awslambdaric's bootstrap does
(same error types and texts), reports READY or INIT_ERROR, then serves INVOKE frames forever with
RESULT / ERROR answers. Log output follows awslambdaric's stdout sink: plain `print`s, the
`[ERROR] Type: message\\rTraceback...` record of an unhandled error, and, if user code imports
`logging`, the root handler with AWS's text (or JSON) format.

Imported by zygotes before they fork, so the module level stays cheap: no threading, logging,
decimal, subprocess, asyncio or email. `logging` is configured lazily through an import hook the
moment user code imports it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from lamina_inside import channel

if TYPE_CHECKING:
    import logging

JSON_CONTENT_TYPE = "application/json"
BYTES_CONTENT_TYPE = "application/unknown"

MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_INDENT = "\u00a0"  # NO-BREAK SPACE, as awslambdaric
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
TEXT_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
UNHANDLED_EXCEPTION_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)
# awslambdaric writes responses with ensure_ascii=False only for this execution environment.
_UNESCAPED_UNICODE_ENVS = frozenset({"AWS_Lambda_python3.12"})
_QUIET_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})  # would suppress logging.warning
_W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")

_THIS_FILE = sys._getframe().f_code.co_filename  # frames of ours are cut from stack traces
_RAW_NONCE = os.urandom(8).hex()
_RAW_OPEN = '"\\u0000' + _RAW_NONCE + ":"  # how json encodes the placeholder's start ...
_RAW_CLOSE = '\\u0000"'  # ... and end

# Per-process state, set by run() and per invoke.
_request_id: str | None = None
_tenant_id: str | None = None
_json_logs = False
_log_level = ""
_ensure_ascii = True


class _Fault(Exception):
    """An error awslambdaric reports with its own `Runtime.*` type (its FaultException)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


# --------------------------------------------------------------------------------------------
# Context object (awslambdaric lambda_context.py)


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    cognito_identity_id: str | None
    cognito_identity_pool_id: str | None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    installation_id: Any
    app_title: Any
    app_version_name: Any
    app_version_code: Any
    app_package_name: Any

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ("client", "custom", "env")

    custom: Any
    env: Any
    client: Any

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"
        )


def _obj_from_dict(cls: type[Any], values: Any) -> Any:
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field, None))
    return obj


class LambdaContext:
    """The handler's `context` argument, attribute for attribute as awslambdaric's."""

    def __init__(
        self,
        invoke_id: str,
        client_context: Any,
        cognito_identity: Any,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        environ = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = _extract_w3c(client_context)
        self.client_context: ClientContext | None = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity: CognitoIdentity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self) -> dict[str, str]:
        """The W3C trace context carried in the client context (traceparent, ...)."""
        return dict(self._w3c_fields)

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


def _extract_w3c(client_context: Any) -> dict[str, str]:
    """Pop `w3c` out of the client context; keep its allow-listed string fields."""
    if not isinstance(client_context, dict) or "w3c" not in client_context:
        return {}
    raw = client_context.pop("w3c")
    if not isinstance(raw, dict):
        return {}
    return {key: raw[key] for key in _W3C_ALLOWED_FIELDS if isinstance(raw.get(key), str)}


# --------------------------------------------------------------------------------------------
# Entry points


def preload() -> None:
    """Import what the runtime needs, once, in a zygote before it forks."""
    import importlib.machinery  # noqa: F401  (the loaders user imports go through)
    import site  # noqa: F401  (.pth processing of the task root)

    json.loads(json.dumps({"warm": [1, 2.5, None, True]}))
    traceback.format_list([("<preload>", 1, "preload", "")])


def rehearse() -> None:
    """Serve one made-up invocation over a private socketpair, before any function is loaded.

    Called by an environment made ahead of demand: the first real invocation then finds the
    runtime's code paths already touched, not copied page by page from the zygote on the
    clock."""
    global _request_id, _tenant_id
    ours, theirs = socket.socketpair()
    try:
        header = {"request_id": "rehearsal", "deadline_ms": 0, "content_type": JSON_CONTENT_TYPE}
        channel.send(ours, channel.INVOKE, header, b'{"rehearsal": true}')
        _serve_next(theirs, lambda event, context: {"echo": event})
        channel.recv(ours)
    finally:
        ours.close()
        theirs.close()
        _request_id = _tenant_id = None


def run(
    channel_sock: socket.socket,
    handler: str,
    task_root: str = "/var/task",
    opt_roots: tuple[str, ...] = ("/opt",),
    init_boundary: str = "",
) -> NoReturn:
    """Init (load the handler), then serve invokes until the channel closes. Never returns.

    `opt_roots`: where layers are, first wins: /opt in a sandbox; without one (rlimits), the
    layers' own trees, last layer first. `init_boundary`: written to the output after a
    successful init, before READY (the server's mark between init output and the first
    invocation's, which may already be waiting on the channel)."""
    started = time.perf_counter()
    try:
        request_handler = _init(channel_sock, handler, task_root, opt_roots)
        init_ms = (time.perf_counter() - started) * 1000
        if init_boundary:
            _flush()
            with contextlib.suppress(OSError):  # the server then marks the boundary at READY
                os.write(1, init_boundary.encode())
        _send(channel_sock, channel.READY, {"init_ms": init_ms})
        while True:
            _serve_next(channel_sock, request_handler)
    except channel.ChannelClosed:
        _exit(0)
    except SystemExit as exc:
        _exit_like_python(exc)
    except BaseException:
        traceback.print_exc()
        _exit(1)


def _exit(code: int) -> NoReturn:
    _flush()
    os._exit(code)


def _exit_like_python(exc: SystemExit) -> NoReturn:
    """sys.exit() in user code: what the interpreter would do, minus thread joins."""
    import atexit

    code = exc.code
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    atexit._run_exitfuncs()
    _exit(code or 0)


# --------------------------------------------------------------------------------------------
# Init


def _init(
    sock: socket.socket, handler: str, task_root: str, opt_roots: tuple[str, ...] = ("/opt",)
) -> Callable[..., Any]:
    global _json_logs, _log_level, _ensure_ascii
    environ = os.environ
    _json_logs = (environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    raw_level = environ.get("AWS_LAMBDA_LOG_LEVEL")
    _log_level = {None: "", "TRACE": "DEBUG"}.get(raw_level, raw_level or "").upper()
    _ensure_ascii = environ.get("AWS_EXECUTION_ENV") not in _UNESCAPED_UNICODE_ENVS
    _setup_stdio()
    _setup_paths(task_root, opt_roots)
    _install_logging_hook()
    try:
        return _load_handler(handler)
    except _Fault as fault:
        doc = _error_doc(fault.message, fault.error_type, fault.trace, None)
    except Exception as exc:
        doc = _exception_doc(exc, None)
    _fail_init(sock, doc)


def _fail_init(sock: socket.socket, doc: dict[str, Any]) -> NoReturn:
    _write(_init_warning_record())
    _log_error(doc)
    _flush()
    with contextlib.suppress(channel.ChannelClosed):
        _send(sock, channel.INIT_ERROR, doc, _encode_error(doc))
        channel.linger(sock.fileno())
    os._exit(1)


def _setup_stdio() -> None:
    """Line-buffered UTF-8 text on fds 1 and 2 (threads' prints land promptly too)."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper) and not stream.closed:
            stream.reconfigure(encoding="utf-8", errors=stream.errors, line_buffering=True)
        else:
            fresh = open(fd, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
            setattr(sys, name, fresh)


def _setup_paths(task_root: str, opt_roots: tuple[str, ...] = ("/opt",)) -> None:
    """AWS's order: the task root, then the layer directories (/opt/python/lib/python3.X/
    site-packages, /opt/python), then the interpreter's own."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    front = [task_root]
    for root in opt_roots:
        front += [f"{root}/python/lib/{version}/site-packages", f"{root}/python"]
    sys.path[:] = front + [p for p in sys.path if p not in front]
    with contextlib.suppress(OSError):  # the handler import reports missing code
        os.chdir(task_root)
    import site

    for directory in front:  # process .pth files, as AWS's bootstrap does
        site.addsitedir(directory)


def _load_handler(handler: str) -> Callable[..., Any]:
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}") from None
    module = _import_user_module(modname)
    try:
        return getattr(module, fname)  # type: ignore[no-any-return]
    except AttributeError:
        message = f"Handler '{fname}' missing on module '{modname}'"
        raise _Fault(HANDLER_NOT_FOUND, message) from None


def _import_user_module(modname: str) -> ModuleType:
    if modname.split(".")[0] in sys.builtin_module_names:
        message = f"Cannot use built-in module {modname} as a handler module"
        raise _Fault(BUILT_IN_MODULE_CONFLICT, message)
    try:
        return importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        message = f"Unable to import module '{modname}': {exc}"
        raise _Fault(IMPORT_MODULE_ERROR, message) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        message = f"Syntax error in module '{modname}': {exc}"
        raise _Fault(USER_CODE_SYNTAX_ERROR, message, trace) from None


# --------------------------------------------------------------------------------------------
# Invoke loop


def _serve_next(sock: socket.socket, handler: Callable[..., Any]) -> None:
    global _request_id, _tenant_id
    try:
        kind, header, payload = channel.recv(sock)
    except OSError as exc:
        raise channel.ChannelClosed() from exc
    if kind != channel.INVOKE:
        return
    request_id: str = header["request_id"]
    _request_id = request_id
    _tenant_id = header.get("tenant_id")
    _update_xray_env(header.get("trace_id"))
    try:
        context = _make_context(request_id, header)
        event = _unmarshal(payload, header.get("content_type") or JSON_CONTENT_TYPE)
        response = handler(event, context)
        body, content_type = _marshal(response)
    except _Fault as fault:
        doc = _error_doc(fault.message, fault.error_type, fault.trace, request_id)
    except Exception as exc:
        doc = _exception_doc(exc, request_id)
    else:
        _flush()
        _send(sock, channel.RESULT, {"content_type": content_type}, body)
        return
    _write(UNHANDLED_EXCEPTION_WARNING)
    _log_error(doc)
    _flush()
    _send(sock, channel.ERROR, {**doc, "error_type": doc["errorType"]}, _encode_error(doc))


def _update_xray_env(trace_id: str | None) -> None:
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)


def _make_context(request_id: str, header: dict[str, Any]) -> LambdaContext:
    client_context = None
    if header.get("client_context"):
        client_context = _parse_json_header(header["client_context"], "Client Context")
    cognito_identity = None
    if header.get("cognito_identity"):
        cognito_identity = _parse_json_header(header["cognito_identity"], "Cognito Identity")
    deadline_ms = int(header.get("deadline_ms") or 0)
    if "timeout_ms" in header:  # sent before init ended: the time counts from now
        deadline_ms = int(time.time() * 1000) + int(header["timeout_ms"])
    return LambdaContext(
        request_id,
        client_context,
        cognito_identity,
        deadline_ms,
        header.get("invoked_function_arn"),
        header.get("tenant_id"),
    )


def _parse_json_header(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except Exception as exc:
        message = f"Unable to parse {name} JSON: {exc}"
        raise _Fault(LAMBDA_CONTEXT_UNMARSHAL_ERROR, message) from None


def _send(sock: socket.socket, kind: int, header: dict[str, Any], payload: bytes = b"") -> None:
    try:
        channel.send(sock, kind, header, payload)
    except OSError as exc:
        raise channel.ChannelClosed() from exc


# --------------------------------------------------------------------------------------------
# Marshalling (awslambdaric lambda_runtime_marshaller.py, simplejson semantics on stdlib json)


def _unmarshal(payload: bytes, content_type: str) -> Any:
    if content_type != JSON_CONTENT_TYPE:
        return payload
    try:
        text = payload.decode("utf-8")
        return json.loads(text[1:] if text.startswith("\ufeff") else text)
    except Exception as exc:
        raise _Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None


def _marshal(response: Any) -> tuple[bytes, str]:
    if isinstance(response, bytes):
        return response, BYTES_CONTENT_TYPE
    try:
        return to_json(response).encode("utf-8"), JSON_CONTENT_TYPE
    except Exception as exc:
        raise _Fault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None


def to_json(obj: Any) -> str:
    """awslambdaric's encoder: Decimal as a JSON number (NaN as NaN), NaN/Infinity allowed."""
    raw: list[str] = []

    def default(o: Any) -> Any:
        decimal = sys.modules.get("decimal")  # a Decimal can only exist if this is imported
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            raw.append(str(o))
            return f"\x00{_RAW_NONCE}:{len(raw) - 1}\x00"
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    text = json.JSONEncoder(ensure_ascii=_ensure_ascii, default=default).encode(obj)
    return _splice_raw(text, raw) if raw else text


def _splice_raw(text: str, raw: list[str]) -> str:
    """Replace each encoded placeholder string with its verbatim number text."""
    head, *pieces = text.split(_RAW_OPEN)
    out = [head]
    for piece in pieces:
        end = piece.index(_RAW_CLOSE)
        out.append(raw[int(piece[:end])])
        out.append(piece[end + len(_RAW_CLOSE) :])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Error documents and their log records


def _error_doc(
    message: str | None, error_type: str | None, trace: list[str] | None, request_id: str | None
) -> dict[str, Any]:
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": trace if trace else [],
    }


def _exception_doc(exc: BaseException, request_id: str | None) -> dict[str, Any]:
    frames = [
        (f.filename, f.lineno or 0, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)
    ]
    for i, frame in enumerate(frames):
        if frame[0] != _THIS_FILE:
            frames = frames[i:]
            break
    return _error_doc(_safe_str(exc), type(exc).__name__, traceback.format_list(frames), request_id)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<exception str() failed: {type(exc).__name__}>"


def _encode_error(doc: dict[str, Any]) -> bytes:
    """The error body exactly as awslambdaric posts it (its to_json of the document)."""
    return to_json(doc).encode("utf-8", "replace")


def _log_error(doc: dict[str, Any]) -> None:
    if _json_logs:
        ts = time.strftime(DATETIME_FORMAT, time.gmtime())
        lines = [to_json({"timestamp": ts, "level": "ERROR", **doc})]
    else:
        lines = _error_lines(doc)
    _write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


def _error_lines(doc: dict[str, Any]) -> list[str]:
    description = "[ERROR]"
    if doc["errorType"]:
        description += " " + doc["errorType"]
    if doc["errorMessage"]:
        if doc["errorType"]:
            description += ":"
        description += " " + doc["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in doc["stackTrace"]:
        if element == "":
            lines.append("")
        else:
            lines.extend(_nbsp_indent(line) for line in element.splitlines())
    return lines


def _nbsp_indent(line: str) -> str:
    stripped = line.lstrip(" ")
    return ERROR_LOG_INDENT * (len(line) - len(stripped)) + stripped


def _init_warning_record() -> str:
    """awslambdaric's `logging.warning(LAMBDA_WARNING...)` before an init error's record."""
    if _log_level in _QUIET_LEVELS:
        return ""
    now = time.time()
    stamp = f"{time.strftime(DATETIME_FORMAT, time.gmtime(now))}.{int(now % 1 * 1000):03d}Z"
    if not _json_logs:
        return f"[WARNING]\t{stamp}\t\t{UNHANDLED_EXCEPTION_WARNING}\n"
    record = {
        "timestamp": stamp,
        "level": "WARNING",
        "message": UNHANDLED_EXCEPTION_WARNING,
        "logger": "root",
        "requestId": "",
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def _write(text: str) -> None:
    if not text:
        return
    with contextlib.suppress(Exception):  # a broken user-replaced stdout must not stop us
        sys.stdout.write(text)


def _flush() -> None:
    """Push the invocation's output into the log pipe before its RESULT/ERROR frame."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# Lazy logging configuration


class _ConfiguringLoader:
    """Wraps the real loader of `logging`; configures the module right after it executes."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _configure_logging()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _LoggingImportHook:
    """A sys.meta_path finder that only ever answers for `logging`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> Any:
        if fullname != "logging":
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ConfiguringLoader(spec.loader)
                return spec
        return None

    def invalidate_caches(self) -> None:
        pass


def _install_logging_hook() -> None:
    if "logging" in sys.modules:
        _configure_logging()
    if not any(isinstance(finder, _LoggingImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LoggingImportHook())


def _configure_logging() -> None:
    """awslambdaric's _setup_logging: a root handler writing AWS's format to stdout."""
    import logging  # only ever reached once user code has imported it

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # no handleError, as awslambdaric
            text = self.format(record)
            # One record, one log event (AWS frames each record; our sink is a line pipe): a
            # record ending in an exception's text gets the newline the format leaves off.
            sys.stdout.write(text if text.endswith("\n") else text + "\n")

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = _request_id or ""
            record.tenant_id = _tenant_id
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if _json_logs:
        handler.setFormatter(_json_formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_LOG_FORMAT, DATETIME_FORMAT))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    if _log_level in logging.getLevelNamesMapping():
        root.setLevel(_log_level)
    root.addHandler(handler)


_RESERVED_RECORD_FIELDS = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
        "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
        "tenant_id", "_frame_type",
    }
)  # fmt: skip


def _json_formatter() -> logging.Formatter:
    """awslambdaric's JsonFormatter (AWS_LAMBDA_LOG_FORMAT=JSON)."""
    import logging

    encode = json.JSONEncoder(ensure_ascii=False).encode

    class JsonFormatter(logging.Formatter):
        def __init__(self) -> None:
            super().__init__(datefmt=DATETIME_FORMAT)

        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            stamp = time.strftime(DATETIME_FORMAT, time.gmtime(record.created))
            return f"{stamp}.{int(record.created % 1 * 1000):03d}Z"

        def format(self, record: logging.LogRecord) -> str:
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                **_exception_fields(record),
                "requestId": getattr(record, "aws_request_id", None),
                "location": (
                    f"{record.pathname}:{record.funcName}:{record.lineno}"
                    if record.exc_info
                    else None
                ),
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.__dict__["tenant_id"]
            result.update(
                (key, value)
                for key, value in record.__dict__.items()
                if key not in _RESERVED_RECORD_FIELDS and key not in result
            )
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


def _exception_fields(record: logging.LogRecord) -> dict[str, Any]:
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return {"stackTrace": None, "errorType": None, "errorMessage": None}
    return {
        "stackTrace": traceback.format_tb(exc_info[2]),
        "errorType": exc_info[0].__name__,
        "errorMessage": str(exc_info[1]),
    }
