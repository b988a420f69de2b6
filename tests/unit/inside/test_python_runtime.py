"""The built-in Python runtime, run for real in a subprocess and driven over the channel.

Each test writes a small function into a temporary task root, starts
`python_runtime.run(socket, handler, task_root)` in a fresh interpreter whose stdout/stderr are one
pipe (the log), and talks to it with `lamina_inside.channel` like the server does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamina_inside import channel

SRC = str(Path(__file__).resolve().parents[3] / "src")
INTERPRETERS = [f"/root/.pyenv/versions/{v}/bin/python" for v in ("3.11.7", "3.12.1", "3.13.0")]
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "en_US.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_REGION": "us-east-1",
}
WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
NBSP = "\u00a0"


class Runtime:
    """One runtime process: the server's end of its channel plus its log pipe."""

    def __init__(self, task_root: Path, handler: str, interpreter: str, env: dict[str, str]):
        self.sock, child = socket.socketpair()
        script = (
            f"import sys; sys.path.insert(0, {SRC!r}); "
            "from lamina_inside import python_runtime; import socket; "
            f"s = socket.socket(fileno={child.fileno()}); "
            f"python_runtime.run(s, {handler!r}, {str(task_root)!r})"
        )
        self.proc = subprocess.Popen(
            [interpreter, "-c", script],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**BASE_ENV, "_HANDLER": handler, **env},
            cwd="/",
        )
        child.close()
        self.sock.settimeout(15)
        assert self.proc.stdout is not None
        self.log_fd = self.proc.stdout.fileno()
        os.set_blocking(self.log_fd, False)

    def recv(self) -> tuple[int, dict[str, Any], bytes]:
        return channel.recv(self.sock)

    def ready(self) -> dict[str, Any]:
        kind, header, _ = self.recv()
        assert kind == channel.READY, (header, self.output())
        return header

    def invoke(
        self, event: Any = None, *, payload: bytes | None = None, **fields: Any
    ) -> tuple[int, dict[str, Any], bytes]:
        header = {
            "request_id": str(uuid.uuid4()),
            "deadline_ms": int(time.time() * 1000) + 3000,
            "invoked_function_arn": ARN,
            "client_context": None,
            "cognito_identity": None,
            "trace_id": None,
            "tenant_id": None,
            "content_type": "application/json",
            **fields,
        }
        body = json.dumps(event).encode() if payload is None else payload
        channel.send(self.sock, channel.INVOKE, header, body)
        return self.recv()

    def result(self, event: Any = None, **fields: Any) -> Any:
        kind, header, payload = self.invoke(event, **fields)
        assert kind == channel.RESULT, (header, self.output())
        assert header == {"content_type": "application/json"}
        return json.loads(payload)

    def output(self) -> str:
        """Everything the runtime has written to its log pipe since the last call."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.log_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()

    def exit_code(self) -> int:
        return self.proc.wait(timeout=15)

    def exit_code_after_init_error(self) -> int:
        """A runtime whose init failed waits for the server to end it (channel.linger): here,
        by closing the channel."""
        self.sock.close()
        return self.exit_code()

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=15)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


Start = Callable[..., Runtime]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """start(source or {path: source}, handler="app.handler", interpreter=..., env=...)."""
    runtimes: list[Runtime] = []

    def _start(
        files: str | dict[str, str],
        handler: str = "app.handler",
        interpreter: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> Runtime:
        for name, source in ({"app.py": files} if isinstance(files, str) else files).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        runtime = Runtime(tmp_path, handler, interpreter, env or {})
        runtimes.append(runtime)
        return runtime

    yield _start
    for runtime in runtimes:
        runtime.close()


def error_log(doc: dict[str, Any]) -> str:
    lines = [
        f"[ERROR] {doc['errorType']}: {doc['errorMessage']}",
        "Traceback (most recent call last):",
    ]
    for element in doc["stackTrace"]:
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(NBSP * (len(line) - len(stripped)) + stripped)
    return "\r".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Happy path

CONTEXT_APP = """
import os, sys, time

def handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.1)
    second = context.get_remaining_time_in_millis()
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [context.identity.cognito_identity_id,
                     context.identity.cognito_identity_pool_id],
        "client_context": context.client_context,
        "tenant_id": context.tenant_id,
        "remaining": [first, second],
        "repr": repr(context),
        "version": list(sys.version_info[:2]),
        "path": sys.path[:3],
        "cwd": os.getcwd(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "logging_loaded": "logging" in sys.modules,
    }
"""


@pytest.mark.parametrize("interpreter", INTERPRETERS, ids=lambda p: p.split("/")[4])
def test_happy_path(start: Start, tmp_path: Path, interpreter: str) -> None:
    if not os.path.exists(interpreter):
        pytest.skip(f"{interpreter} not installed")
    runtime = start(CONTEXT_APP, interpreter=interpreter)
    ready = runtime.ready()
    assert isinstance(ready["init_ms"], float)
    assert 0 < ready["init_ms"] < 5000
    event = {"key": "value", "list": [1, 2.5, None, True], "nested": {"ü": "ß"}}
    deadline = int(time.time() * 1000) + 3000
    rid = str(uuid.uuid4())
    got = runtime.result(event, request_id=rid, deadline_ms=deadline, trace_id="Root=1-abc")
    major, minor = got["version"]
    assert interpreter.split("/")[4].startswith(f"{major}.{minor}.")
    assert got["event"] == event
    assert got["function_name"] == "fn"
    assert got["function_version"] == "$LATEST"
    assert got["invoked_function_arn"] == ARN
    assert got["memory_limit_in_mb"] == "128"
    assert got["aws_request_id"] == rid
    assert got["log_group_name"] == "/aws/lambda/fn"
    assert got["log_stream_name"] == BASE_ENV["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert got["identity"] == [None, None]
    assert got["client_context"] is None
    assert got["tenant_id"] is None
    first, second = got["remaining"]
    assert 2000 < first <= deadline - int(time.time() * 1000) + 200
    assert first - second >= 90
    assert got["repr"].startswith(f"LambdaContext([aws_request_id={rid},log_group_name=")
    assert got["path"] == [
        str(tmp_path),
        f"/opt/python/lib/python{major}.{minor}/site-packages",
        "/opt/python",
    ]
    assert got["cwd"] == str(tmp_path)
    assert got["trace"] == "Root=1-abc"
    assert got["logging_loaded"] is False  # the runtime never imports logging itself
    past = runtime.result({}, deadline_ms=int(time.time() * 1000) - 1000)
    assert past["remaining"] == [0, 0]
    assert past["trace"] is None  # _X_AMZN_TRACE_ID is per invoke
    assert runtime.output() == ""


def test_module_globals_persist_across_invokes(start: Start) -> None:
    runtime = start(
        """
        COUNT = 0

        def handler(event, context):
            global COUNT
            COUNT += 1
            return COUNT
        """
    )
    runtime.ready()
    assert runtime.result() == 1
    assert runtime.result() == 2


def test_results_bytes_none_decimal_and_unicode(start: Start) -> None:
    runtime = start(
        """
        from decimal import Decimal

        def handler(event, context):
            return {
                "bytes": b"\\x00\\xffraw",
                "none": None,
                "decimal": {"a": Decimal("1.50"), "n": Decimal("NaN"), "e": Decimal("1E+400"),
                            "list": [Decimal("-0"), "x"]},
                "unicode": "é",
                "float": float("inf"),
            }[event]
        """
    )
    runtime.ready()
    assert runtime.invoke("bytes") == (
        channel.RESULT,
        {"content_type": "application/unknown"},
        b"\x00\xffraw",
    )
    assert runtime.invoke("none") == (channel.RESULT, {"content_type": "application/json"}, b"null")
    kind, _, body = runtime.invoke("decimal")
    assert kind == channel.RESULT
    assert body == b'{"a": 1.50, "n": NaN, "e": 1E+400, "list": [-0, "x"]}'
    assert runtime.invoke("unicode")[2] == b'"\\u00e9"'
    assert runtime.invoke("float")[2] == b"Infinity"


def test_unescaped_unicode_on_python312_execution_env(start: Start) -> None:
    runtime = start(
        "def handler(event, context):\n    return 'é'\n",
        env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"},
    )
    runtime.ready()
    assert runtime.invoke()[2] == '"é"'.encode()


def test_non_json_content_type_passes_raw_bytes(start: Start) -> None:
    runtime = start("def handler(event, context):\n    return event\n")
    runtime.ready()
    kind, header, body = runtime.invoke(payload=b"\x01raw", content_type="application/octet-stream")
    assert (kind, header, body) == (
        channel.RESULT,
        {"content_type": "application/unknown"},
        b"\x01raw",
    )
    assert runtime.result(payload=b"\xef\xbb\xbf[1]") == [1]  # a UTF-8 BOM is skipped


def test_handler_in_a_subdirectory(start: Start) -> None:
    runtime = start(
        {"dir/app.py": "def handler(event, context):\n    return __name__\n"},
        handler="dir/app.handler",
    )
    runtime.ready()
    assert runtime.result() == "dir.app"


def test_client_context_cognito_and_tenant(start: Start) -> None:
    runtime = start(
        """
        def handler(event, context):
            cc = context.client_context
            return {
                "client": [cc.client.installation_id, cc.client.app_title,
                           cc.client.app_version_name, cc.client.app_version_code,
                           cc.client.app_package_name],
                "custom": cc.custom,
                "env": cc.env,
                "identity": [context.identity.cognito_identity_id,
                             context.identity.cognito_identity_pool_id],
                "tenant": context.tenant_id,
                "w3c": context.w3c(),
                "repr": repr(context.identity),
            }
        """
    )
    runtime.ready()
    client_context = {
        "client": {
            "installation_id": "inst",
            "app_title": "title",
            "app_version_name": "1.0",
            "app_version_code": "100",
            "app_package_name": "pkg",
        },
        "custom": {"k": "v"},
        "env": {"platform": "android"},
        "w3c": {"traceparent": "00-abc-def-01", "other": "dropped", "baggage": 3},
    }
    cognito = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    got = runtime.result(
        client_context=json.dumps(client_context),
        cognito_identity=json.dumps(cognito),
        tenant_id="tenant-a",
    )
    assert got == {
        "client": ["inst", "title", "1.0", "100", "pkg"],
        "custom": {"k": "v"},
        "env": {"platform": "android"},
        "identity": ["id-1", "pool-1"],
        "tenant": "tenant-a",
        "w3c": {"traceparent": "00-abc-def-01"},
        "repr": "CognitoIdentity([cognito_identity_id=id-1,cognito_identity_pool_id=pool-1])",
    }


# ----------------------------------------------------------------------------------------------
# Logs


def test_print_context_log_stderr_and_threads(start: Start) -> None:
    runtime = start(
        """
        import sys, threading

        print("init line")

        def handler(event, context):
            print("hello", context.aws_request_id)
            context.log("via context\\n")
            print("to stderr", file=sys.stderr)
            worker = threading.Thread(target=lambda: print("from thread"))
            worker.start()
            worker.join()
            sys.stdout.write("no newline")
            return "ok"
        """
    )
    runtime.ready()
    assert runtime.output() == "init line\n"
    kind, _, _ = runtime.invoke(request_id="rid-1")
    assert kind == channel.RESULT
    assert runtime.output() == ("hello rid-1\nvia context\nto stderr\nfrom thread\nno newline")


def test_logging_uses_the_aws_text_format(start: Start) -> None:
    runtime = start(
        """
        import logging

        logger = logging.getLogger("app")

        def handler(event, context):
            logger.warning("warned %s", 1)
            logging.info("not shown: the root level stays WARNING")
            logging.error("err\\nsecond line")
            return "ok"
        """
    )
    runtime.ready()
    runtime.invoke(request_id="rid-2")
    assert re.fullmatch(
        rf"\[WARNING\]\t{STAMP}\trid-2\twarned 1\n\[ERROR\]\t{STAMP}\trid-2\terr\nsecond line\n",
        runtime.output(),
    )


def test_logging_imported_late_honours_log_level(start: Start) -> None:
    runtime = start(
        """
        def handler(event, context):
            import logging
            logging.getLogger("x").debug("debugging")
            try:
                1 / 0
            except ZeroDivisionError:
                logging.exception("caught")
            return "ok"
        """,
        env={"AWS_LAMBDA_LOG_LEVEL": "TRACE"},
    )
    runtime.ready()
    runtime.invoke(request_id="rid-3")
    output = runtime.output()
    assert re.match(
        rf"\[DEBUG\]\t{STAMP}\trid-3\tdebugging\n\[ERROR\]\t{STAMP}\trid-3\tcaught\n", output
    )
    assert output.endswith("\nZeroDivisionError: division by zero\n")  # one record, one line


def test_json_log_format(start: Start, tmp_path: Path) -> None:
    runtime = start(
        """
        import logging

        def handler(event, context):
            logging.getLogger("app").warning("hi %s", "there", extra={"custom": 1})
            raise ValueError("bad")
        """,
        env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
    )
    runtime.ready()
    kind, header, _ = runtime.invoke(request_id="rid-4", tenant_id="t1")
    assert kind == channel.ERROR
    first, second = runtime.output().split("\n", 1)
    record = json.loads(first)
    assert re.fullmatch(STAMP, record.pop("timestamp"))
    assert record == {
        "level": "WARNING",
        "message": "hi there",
        "logger": "app",
        "requestId": "rid-4",
        "tenantId": "t1",
        "custom": 1,
    }
    assert second.startswith(WARNING)
    error = json.loads(second[len(WARNING) :])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", error.pop("timestamp"))
    assert error == {"level": "ERROR", **{k: v for k, v in header.items() if k != "error_type"}}


# ----------------------------------------------------------------------------------------------
# Invoke errors


def test_handler_exception(start: Start, tmp_path: Path) -> None:
    runtime = start(
        """
        def handler(event, context):
            helper()

        def helper():
            raise Exception("Handler fails")
        """
    )
    runtime.ready()
    runtime.output()
    kind, header, payload = runtime.invoke(request_id="rid-5")
    path = tmp_path / "app.py"
    doc = {
        "errorMessage": "Handler fails",
        "errorType": "Exception",
        "requestId": "rid-5",
        "stackTrace": [
            f'  File "{path}", line 3, in handler\n    helper()\n',
            f'  File "{path}", line 6, in helper\n    raise Exception("Handler fails")\n',
        ],
    }
    assert kind == channel.ERROR
    assert header == {**doc, "error_type": "Exception"}
    assert payload == json.dumps(doc).encode()
    assert runtime.output() == WARNING + error_log(doc)
    kind, _, _ = runtime.invoke()  # and it keeps serving
    assert kind == channel.ERROR


@pytest.mark.parametrize(
    ("source", "payload", "fields", "error_type", "message"),
    [
        (
            "def handler(event, context):\n    return event\n",
            b"{not json",
            {},
            "Runtime.UnmarshalError",
            "Unable to unmarshal input: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            "def handler(event, context):\n    return {1, 2}\n",
            b"{}",
            {},
            "Runtime.MarshalError",
            "Unable to marshal response: Object of type set is not JSON serializable",
        ),
        (
            "def handler(event, context):\n    return 1\n",
            b"{}",
            {"client_context": "{bad"},
            "Runtime.LambdaContextUnmarshalError",
            "Unable to parse Client Context JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
    ],
    ids=["unmarshal", "marshal", "client-context"],
)
def test_runtime_invoke_errors(
    start: Start,
    source: str,
    payload: bytes,
    fields: dict[str, Any],
    error_type: str,
    message: str,
) -> None:
    runtime = start(source)
    runtime.ready()
    kind, header, body = runtime.invoke(payload=payload, request_id="rid-6", **fields)
    doc = {"errorMessage": message, "errorType": error_type, "requestId": "rid-6", "stackTrace": []}
    assert kind == channel.ERROR
    assert header == {**doc, "error_type": error_type}
    assert json.loads(body) == doc
    assert (
        runtime.output()
        == f"{WARNING}[ERROR] {error_type}: {message}\rTraceback (most recent call last):\n"
    )


def test_sys_exit_in_handler_ends_the_process(start: Start) -> None:
    runtime = start("import sys\n\ndef handler(event, context):\n    sys.exit(3)\n")
    runtime.ready()
    with pytest.raises(channel.ChannelClosed):
        runtime.invoke()
    assert runtime.exit_code() == 3


# ----------------------------------------------------------------------------------------------
# Init errors


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"app.py": "def handler(e, c):\n    pass\n"},
            "app",
            "Runtime.MalformedHandlerName",
            "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
        ),
        (
            {"app.py": ""},
            "sys.handler",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
        (
            {"app.py": ""},
            "nope.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nope': No module named 'nope'",
        ),
        (
            {"app.py": "import not_installed_dependency\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_installed_dependency'",
        ),
        (
            {"app.py": "def other(e, c):\n    pass\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        (
            {"dir/app.py": ""},
            "dir/app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'dir/app'",
        ),
    ],
    ids=["malformed", "builtin", "no-module", "no-dependency", "no-handler", "no-handler-dir"],
)
def test_init_errors(
    start: Start, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    runtime = start(files, handler=handler)
    kind, header, payload = runtime.recv()
    doc = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
    assert kind == channel.INIT_ERROR
    assert header == doc
    assert payload == json.dumps(doc).encode()
    assert runtime.exit_code_after_init_error() == 1
    assert re.fullmatch(
        rf"\[WARNING\]\t{STAMP}\t\t{re.escape(WARNING)}\n"
        + re.escape(f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):\n"),
        runtime.output(),
    )


def test_init_syntax_error(start: Start, tmp_path: Path) -> None:
    runtime = start("x = = 1\n")
    kind, header, _ = runtime.recv()
    doc = {
        "errorMessage": "Syntax error in module 'app': invalid syntax (app.py, line 1)",
        "errorType": "Runtime.UserCodeSyntaxError",
        "requestId": "",
        "stackTrace": [f'  File "{tmp_path / "app.py"}" Line 1\n    x = = 1\n'],
    }
    assert (kind, header) == (channel.INIT_ERROR, doc)
    assert runtime.exit_code_after_init_error() == 1
    assert runtime.output().endswith("\n" + error_log(doc))


def test_init_exception_in_module_code(start: Start, tmp_path: Path) -> None:
    runtime = start('print("before")\nraise Exception("Runtime startup fails")\n')
    kind, header, _ = runtime.recv()
    assert kind == channel.INIT_ERROR
    trace = header.pop("stackTrace")
    assert header == {
        "errorMessage": "Runtime startup fails",
        "errorType": "Exception",
        "requestId": "",
    }
    assert re.fullmatch(
        r'  File ".*/importlib/__init__\.py", line \d+, in import_module\n    return .*\n', trace[0]
    )
    assert trace[-1] == (
        f'  File "{tmp_path / "app.py"}", line 2, in <module>\n'
        '    raise Exception("Runtime startup fails")\n'
    )
    assert not any("python_runtime.py" in frame for frame in trace)
    assert runtime.exit_code_after_init_error() == 1
    output = runtime.output()
    assert output.startswith("before\n[WARNING]\t")
    assert output.endswith("\n" + error_log({**header, "stackTrace": trace}))


# ----------------------------------------------------------------------------------------------
# Lifecycle and import cost


def test_init_error_then_reads_until_the_server_closes(start: Start) -> None:
    """The server may still be writing an invocation sent ahead of the init: exiting with it
    unread would break the channel, and the server would lose the INIT_ERROR with it."""
    runtime = start("x = 1\n", handler="app.missing")
    kind, _, _ = runtime.recv()
    assert kind == channel.INIT_ERROR
    header = {"request_id": "ahead", "timeout_ms": 3000, "content_type": "application/json"}
    event = json.dumps({"big": "x" * 4_000_000}).encode()
    runtime.sock.sendall(channel.encode(channel.INVOKE, header, event))  # drained, or times out
    with pytest.raises(subprocess.TimeoutExpired):
        runtime.proc.wait(timeout=0.3)
    assert runtime.exit_code_after_init_error() == 1


def test_channel_closed_exits_zero(start: Start) -> None:
    runtime = start("def handler(event, context):\n    return 1\n")
    runtime.ready()
    assert runtime.result() == 1
    runtime.sock.close()
    assert runtime.exit_code() == 0


def test_import_and_preload_stay_lean() -> None:
    heavy = ["threading", "logging", "subprocess", "asyncio", "decimal", "email"]
    script = (
        f"import sys; sys.path.insert(0, {SRC!r}); before = set(sys.modules); "
        "from lamina_inside import python_runtime; python_runtime.preload(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules and m not in before))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout == "[]\n"
