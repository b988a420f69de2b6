"""Invoke end to end: the handler contract, the Invoke API, function errors, warm reuse and
scale-out, all through boto3 against a live server running strict isolation."""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lamina_support import (
    ACCOUNT,
    REGION,
    UUID_RE,
    client,
    expect_failure,
    function_arn,
    make_zip,
    start_server,
    unique_name,
)

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]
FUNCTIONS = Path(__file__).resolve().parent.parent / "functions" / "python"
STREAM_RE = r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}"
LOG_TS_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
MAX_RESPONSE = 6_291_556
MAX_REQUEST = 6_291_456


# --- helpers -------------------------------------------------------------------------------------


def fixture_code(name: str) -> str:
    """The source of tests/functions/python/<name>/fn_<name>.py."""
    return (FUNCTIONS / name / f"fn_{name}.py").read_text()


def fixture_zip(name: str) -> bytes:
    """That fixture packaged as app.py (handler `app.handler`)."""
    return make_zip({"app.py": fixture_code(name)})


def report_re(request_id: str, init: bool | None) -> str:
    """AWS's REPORT line; `init`: True = Init Duration required, False = absent, None = either."""
    init_field = r"Init Duration: \d+\.\d\d ms\t"
    init_part = {True: init_field, False: "", None: f"({init_field})?"}[init]
    return (
        f"REPORT RequestId: {re.escape(request_id)}\\tDuration: \\d+\\.\\d\\d ms\\t"
        r"Billed Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t"
        f"{init_part}\\n"
    )


@dataclass
class Result:
    status: int
    error: str | None
    version: str | None
    payload: bytes
    log: str | None
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.payload)

    @property
    def request_id(self) -> str:
        """The invocation's id, from the REPORT line that ends the log tail."""
        match = re.match(r"REPORT RequestId: (\S+)\t", self.report)
        assert match, self.report
        return match.group(1)

    @property
    def report(self) -> str:
        assert self.log is not None
        lines = self.log.splitlines(keepends=True)
        assert lines, self.log
        assert lines[-1].startswith("REPORT RequestId: "), self.log
        return lines[-1]

    @property
    def cold(self) -> bool:
        return "\tInit Duration: " in self.report


def invoke(
    lam: Any, name: str, event: Any = None, *, raw: bytes | None = None, **kwargs: Any
) -> Result:
    params: dict[str, Any] = {"FunctionName": name, "LogType": "Tail", **kwargs}
    if raw is not None:
        params["Payload"] = raw
    elif event is not None:
        params["Payload"] = json.dumps(event).encode()
    response = lam.invoke(**params)
    with response["Payload"] as body:
        payload = body.read()
    log = response.get("LogResult")
    return Result(
        response["StatusCode"],
        response.get("FunctionError"),
        response.get("ExecutedVersion"),
        payload,
        base64.b64decode(log).decode() if log is not None else None,
        response["ResponseMetadata"]["HTTPHeaders"],
    )


def wait_active(lam: Any, name: str) -> None:
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def wait_updated(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def deploy(create: Create, lam: Any, code: bytes, **overrides: Any) -> str:
    name = unique_name()
    create(name, Code={"ZipFile": code}, **overrides)
    wait_active(lam, name)
    return name


def intervals_overlap(intervals: list[tuple[float, float]]) -> bool:
    ordered = sorted(intervals)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


# --- handler contract ----------------------------------------------------------------------------


def test_event_context_environment_and_paths(lambda_client: Any, create_function: Create) -> None:
    name = deploy(
        create_function,
        lambda_client,
        fixture_zip("inspect"),
        Timeout=7,
        Environment={"Variables": {"GREETING": "hello there", "ANSWER": "42"}},
    )
    event = {"a": [1, 2.5, None, True], "nested": {"ü": "✓"}, "s": "x"}
    started = time.monotonic()
    result = invoke(lambda_client, name, event)
    assert time.monotonic() - started < 7

    assert (result.status, result.error, result.version) == (200, None, "$LATEST")
    body = result.json()
    assert body["event"] == event
    context = body["context"]
    remaining = context.pop("remaining_ms")
    assert isinstance(remaining, int)
    assert 0 < remaining <= 7000
    stream = context.pop("log_stream_name")
    assert re.fullmatch(STREAM_RE, stream), stream
    request_id = context.pop("aws_request_id")
    assert re.fullmatch(UUID_RE, request_id)
    assert request_id == result.request_id
    assert context == {
        "function_name": name,
        "function_version": "$LATEST",
        "invoked_function_arn": function_arn(name),
        "memory_limit_in_mb": "128",
        "log_group_name": f"/aws/lambda/{name}",
        "client_context": None,
    }
    assert body["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
        "TZ": ":UTC",
        "GREETING": "hello there",
        "ANSWER": "42",
    }
    assert body["sys_path0"] == "/var/task"
    assert body["cwd"] == "/var/task"
    assert body["module_file"] == "/var/task/app.py"


def test_reserved_variables_cannot_be_overridden(lambda_client: Any) -> None:
    """Reserved keys always win: the customer cannot set them at all."""
    name = unique_name()
    failed = expect_failure(
        lambda: lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": fixture_zip("inspect")},
            Environment={"Variables": {"AWS_REGION": "eu-west-1", "GREETING": "hi"}},
        )
    )
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert "Reserved keys used in this request: AWS_REGION" in failed.message


def test_handler_in_a_subdirectory(lambda_client: Any, create_function: Create) -> None:
    source = (FUNCTIONS / "nested" / "lib" / "handlers" / "fn_nested.py").read_text()
    code = make_zip({"lib/handlers/app.py": source})
    name = deploy(create_function, lambda_client, code, Handler="lib/handlers/app.handler")
    result = invoke(lambda_client, name, {})
    assert (result.status, result.error) == (200, None)
    assert result.json() == {
        "where": "lib.handlers.app",
        "file": "/var/task/lib/handlers/app.py",
        "cwd": "/var/task",
    }


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13"])
def test_runtime_versions(lambda_client: Any, create_function: Create, runtime: str) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("inspect"), Runtime=runtime)
    result = invoke(lambda_client, name, {"r": runtime})
    assert (result.status, result.error) == (200, None)
    body = result.json()
    assert body["version_info"] == [3, int(runtime.removeprefix("python3."))]
    assert body["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
    assert body["event"] == {"r": runtime}


# --- Invoke API ----------------------------------------------------------------------------------


def test_executed_version_of_a_published_version(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("inspect"), Publish=True)
    published = invoke(lambda_client, name, {}, Qualifier="1")
    assert (published.status, published.error, published.version) == (200, None, "1")
    context = published.json()["context"]
    assert context["function_version"] == "1"
    assert context["invoked_function_arn"] == function_arn(name) + ":1"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", context["log_stream_name"])
    assert published.log is not None
    assert published.log.startswith(f"START RequestId: {published.request_id} Version: 1\n")

    latest = invoke(lambda_client, name, {})
    assert (latest.status, latest.version) == (200, "$LATEST")
    assert latest.json()["context"]["function_version"] == "$LATEST"
    assert latest.headers["x-amz-executed-version"] == "$LATEST"


def test_dry_run_does_not_invoke(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    response = lambda_client.invoke(FunctionName=name, InvocationType="DryRun")
    with response["Payload"] as body:
        assert body.read() == b""
    assert response["StatusCode"] == 204
    assert "FunctionError" not in response
    # The first real invocation is still the cold start, and the first the code ever saw.
    result = invoke(lambda_client, name, {})
    assert result.json()["count"] == 1
    assert result.cold

    missing = unique_name()
    failed = expect_failure(
        lambda: lambda_client.invoke(FunctionName=missing, InvocationType="DryRun")
    )
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)


def test_responses_are_framed_by_content_length(
    server: Any, lambda_client: Any, create_function: Create
) -> None:
    """AWS answers with Content-Length, never chunked; an answer is one write, so pipelined
    requests on one connection still get their answers whole and in order."""
    name = deploy(create_function, lambda_client, fixture_zip("inspect"))
    host, port = server.endpoint.removeprefix("http://").split(":")
    calls = [
        ("POST", f"/2015-03-31/functions/{name}/invocations", b'{"n": 1}'),
        ("GET", f"/2015-03-31/functions/{unique_name()}", b""),  # 404
        ("POST", f"/2015-03-31/functions/{name}/invocations", b'{"n": 2}'),
    ]
    with socket.create_connection((host, int(port))) as sock:
        for method, path, body in calls:  # all sent before any answer is read
            request = AWSRequest(method=method, url=server.endpoint + path, data=body)
            SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(request)
            head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
            sock.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        stream = sock.makefile("rb")
        answers = []
        for _ in calls:
            status = int(stream.readline().split()[1])
            headers = {}
            while (line := stream.readline().rstrip(b"\r\n")) != b"":
                key, _, value = line.decode().partition(":")
                headers[key.lower()] = value.strip()
            assert "transfer-encoding" not in headers
            answers.append((status, stream.read(int(headers["content-length"]))))
    assert [status for status, _ in answers] == [200, 404, 200]
    assert json.loads(answers[0][1])["event"] == {"n": 1}
    assert json.loads(answers[1][1])["Type"] == "User"
    assert json.loads(answers[2][1])["event"] == {"n": 2}


def test_log_tail_cold_then_warm(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("inspect"))
    for cold in (True, False):
        result = invoke(lambda_client, name, {})
        rid = result.request_id
        assert re.fullmatch(UUID_RE, rid)
        assert result.json()["context"]["aws_request_id"] == rid
        assert result.log is not None
        assert re.fullmatch(
            f"START RequestId: {rid} Version: \\$LATEST\\n"
            "inspect says hello\\n"
            f"END RequestId: {rid}\\n" + report_re(rid, cold),
            result.log,
        ), result.log


def test_a_cold_starts_init_output_precedes_start_and_its_timeout_starts_after_init(
    lambda_client: Any, create_function: Create
) -> None:
    """A cold start's first invocation goes to the runtime with its specialization and runs as
    soon as init ends (Environment.send_first). Init is a phase of its own (AWS: up to 10 s,
    apart from the function's timeout): after a 1.5 s init under Timeout=2 the handler still
    has about 2 s, and what init printed comes before START, what the handler printed after."""
    code = (
        "import sys, time\n"
        "print('init says hi')\n"
        "sys.stderr.write('init on stderr\\n')\n"
        "time.sleep(1.5)\n"
        "def handler(event, context):\n"
        "    print('handler says hi')\n"
        "    return context.get_remaining_time_in_millis()\n"
    )
    name = deploy(create_function, lambda_client, make_zip({"app.py": code}), Timeout=2)
    result = invoke(lambda_client, name, {})
    assert result.cold
    assert 1500 < result.json() <= 2000, result.json()  # counting init would leave ~500
    rid = result.request_id
    assert re.fullmatch(
        "init says hi\ninit on stderr\n"
        f"START RequestId: {rid} Version: \\$LATEST\n"
        "handler says hi\n"
        f"END RequestId: {rid}\n" + report_re(rid, True),
        result.log or "",
    ), result.log


def test_log_tail_is_the_last_4_kb(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("sizes"))
    lines = 100  # 100 lines of 101 bytes: about 10 KB of output
    result = invoke(lambda_client, name, {"kind": "chatty", "lines": lines})
    assert result.json() == {"printed": lines}
    assert result.log is not None
    tail = result.log.encode()
    assert len(tail) == 4096
    report = result.report
    assert re.fullmatch(report_re(result.request_id, True), report), report
    printed = "".join(f"line {i:05d} " + "." * 89 + "\n" for i in range(lines))
    full = (
        f"START RequestId: {result.request_id} Version: $LATEST\n"
        + printed
        + f"END RequestId: {result.request_id}\n"
        + report
    ).encode()
    assert len(full) > 10_000
    assert tail == full[-4096:]


def test_client_context_reaches_the_handler(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("inspect"))
    document = {
        "custom": {"user": "alice", "n": 3},
        "env": {"platform": "Android", "locale": "en_GB"},
        "client": {"installation_id": "inst-1", "app_title": "Demo", "app_version_code": "7"},
    }
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    result = invoke(lambda_client, name, {}, ClientContext=encoded)
    assert (result.status, result.error) == (200, None)
    assert result.json()["context"]["client_context"] == {
        "custom": {"user": "alice", "n": 3},
        "env": {"platform": "Android", "locale": "en_GB"},
        "client": {
            "installation_id": "inst-1",
            "app_title": "Demo",
            "app_version_name": None,
            "app_version_code": "7",
            "app_package_name": None,
        },
    }


def test_empty_payload_is_an_empty_event(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("inspect"))
    result = invoke(lambda_client, name)  # no Payload at all
    assert (result.status, result.error) == (200, None)
    assert result.json()["event"] == {}
    assert invoke(lambda_client, name, raw=b"").json()["event"] == {}


def test_non_json_payload_is_rejected(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    failed = expect_failure(lambda: lambda_client.invoke(FunctionName=name, Payload=b"not json{"))
    assert (failed.code, failed.status) == ("InvalidRequestContentException", 400)
    assert failed.message.startswith("Could not parse request body into json")
    # Nothing ran: the next invocation is the first the code sees.
    assert invoke(lambda_client, name, {}).json()["count"] == 1


def test_request_payload_over_6_mb(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    payload = b'"' + b"a" * (MAX_REQUEST - 1) + b'"'  # valid JSON, one byte too many
    assert len(payload) == MAX_REQUEST + 1
    failed = expect_failure(lambda: lambda_client.invoke(FunctionName=name, Payload=payload))
    # AWS's code and wording, as public SDK error logs show them
    assert (failed.code, failed.status) == ("RequestEntityTooLargeException", 413)
    assert failed.message == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )
    assert invoke(lambda_client, name, {}).json()["count"] == 1


def test_response_over_the_limit(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("sizes"))
    at_limit = invoke(lambda_client, name, {"kind": "chars", "size": MAX_RESPONSE})
    assert (at_limit.status, at_limit.error) == (200, None)
    assert len(at_limit.payload) == MAX_RESPONSE

    over = invoke(lambda_client, name, {"kind": "chars", "size": MAX_RESPONSE + 1})
    assert (over.status, over.error) == (200, "Unhandled")
    assert over.json() == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("bytes", b"\x00raw\xffbytes"), ("none", b"null"), ("string", b'"just a string"')],
)
def test_return_values(
    lambda_client: Any, create_function: Create, kind: str, expected: bytes
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("sizes"))
    result = invoke(lambda_client, name, {"kind": kind})
    assert (result.status, result.error, result.payload) == (200, None, expected)


# --- errors --------------------------------------------------------------------------------------


def test_handler_exception(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("errors"))
    result = invoke(lambda_client, name, {"value": 7})
    assert (result.status, result.error, result.version) == (200, "Unhandled", "$LATEST")
    body = result.json()
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorMessage"] == "bad input: 7"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == result.request_id
    trace = body["stackTrace"]
    assert isinstance(trace, list)
    assert len(trace) == 2, trace  # the runtime's own frames are cut
    assert re.fullmatch(
        r'  File "/var/task/app\.py", line \d+, in handler\n    fail\(.*\)\n', trace[0]
    )
    assert re.fullmatch(
        r'  File "/var/task/app\.py", line \d+, in fail\n    raise ValueError\(message\)\n',
        trace[1],
    )
    assert result.log is not None
    assert "[ERROR] ValueError: bad input: 7\rTraceback (most recent call last):\r" in result.log
    assert re.search(report_re(result.request_id, True) + r"\Z", result.log), result.log
    # A handled-by-the-runtime error leaves the environment warm.
    again = invoke(lambda_client, name, {"value": 8})
    assert again.json()["errorMessage"] == "bad input: 8"
    assert not again.cold


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            None,
            "nope.handler",
            "Runtime.ImportModuleError",
            re.escape("Unable to import module 'nope': No module named 'nope'"),
        ),
        (
            None,
            "app.missing",
            "Runtime.HandlerNotFound",
            re.escape("Handler 'missing' missing on module 'app'"),
        ),
        (
            {"app.py": 'def handler(event, context):\n    return {"oops": (1, 2}\n'},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            re.escape(
                "Syntax error in module 'app': closing parenthesis '}' does not match opening "
                "parenthesis '(' (app.py, line 2)"
            ),
        ),
    ],
    ids=["import-module", "handler-not-found", "syntax"],
)
def test_init_errors(
    lambda_client: Any,
    create_function: Create,
    files: dict[str, str | bytes] | None,
    handler: str,
    error_type: str,
    message: str,
) -> None:
    code = make_zip(files) if files else fixture_zip("inspect")
    name = deploy(create_function, lambda_client, code, Handler=handler)
    bodies = []
    for _ in range(2):  # the failed environment is gone; the next invoke tries init again
        result = invoke(lambda_client, name, {})
        assert (result.status, result.error) == (200, "Unhandled")
        body = result.json()
        assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
        assert body["errorType"] == error_type
        assert re.fullmatch(message, body["errorMessage"]), body["errorMessage"]
        assert body["requestId"] == ""
        assert result.log is not None
        assert f"START RequestId: {result.request_id} Version: $LATEST\n" in result.log
        bodies.append(body)
    assert bodies[0] == bodies[1]
    if error_type == "Runtime.UserCodeSyntaxError":
        assert bodies[0]["stackTrace"] == [
            '  File "/var/task/app.py" Line 2\n        return {"oops": (1, 2}'
        ]


def test_init_error_reaches_the_caller_when_a_large_event_was_sent_ahead(
    lambda_client: Any, create_function: Create
) -> None:
    """The invocation goes down the channel behind the specialization. A 5 MB one is still
    being written when the init fails: the runtime must not exit with it unread (the broken
    channel took the INIT_ERROR with it, and the caller got Runtime.ExitError)."""
    name = deploy(create_function, lambda_client, fixture_zip("inspect"), Handler="app.missing")
    for _ in range(3):  # without the fix, three runs of four (of two tries) failed
        result = invoke(lambda_client, name, {"big": "x" * 5_000_000})
        assert (result.status, result.error) == (200, "Unhandled")
        assert result.json()["errorType"] == "Runtime.HandlerNotFound", result.json()


def test_exception_at_import_retries_init_on_a_fresh_environment(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("import_raises"))
    messages = []
    for _ in range(2):
        result = invoke(lambda_client, name, {})
        assert (result.status, result.error) == (200, "Unhandled")
        body = result.json()
        assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
        assert body["errorType"] == "RuntimeError"
        assert body["requestId"] == ""
        # "1": each init counted in a /tmp of its own, so each ran in a fresh environment.
        assert re.fullmatch(f"init failed 1 {UUID_RE}", body["errorMessage"])
        assert any('File "/var/task/app.py"' in frame for frame in body["stackTrace"])
        messages.append(body["errorMessage"])
    assert messages[0] != messages[1]  # the module ran again: init was retried, not replayed


def test_logging_module_lines(lambda_client: Any, create_function: Create) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("errors"))
    result = invoke(lambda_client, name, {"log": "x"})
    assert (result.status, result.error) == (200, None)
    assert result.json() == {"logged": "x"}
    assert result.log is not None
    rid = result.request_id
    assert re.fullmatch(
        f"START RequestId: {rid} Version: \\$LATEST\\n"
        f"\\[WARNING\\]\\t{LOG_TS_RE}\\t{rid}\\tx\\n"
        f"END RequestId: {rid}\\n" + report_re(rid, True),
        result.log,
    ), result.log


# --- warm reuse and scale-out --------------------------------------------------------------------


def test_sequential_invokes_reuse_one_environment(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    results = [invoke(lambda_client, name, {}) for _ in range(3)]
    bodies = [r.json() for r in results]
    assert [b["count"] for b in bodies] == [1, 2, 3]
    assert len({b["env_id"] for b in bodies}) == 1  # kept in /tmp by the first invoke
    assert len({b["stream"] for b in bodies}) == 1
    assert len(bodies[2]["intervals"]) == 6  # /tmp/intervals kept growing
    assert [r.cold for r in results] == [True, False, False]


def _invoke_many(endpoint: str, name: str, events: list[dict[str, Any]]) -> list[Result]:
    """Invoke concurrently, one client per thread, all released at once."""
    clients = [client(endpoint) for _ in events]
    barrier = threading.Barrier(len(events))

    def one(index: int) -> Result:
        barrier.wait()
        return invoke(clients[index], name, events[index])

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(one, range(len(events))))


def test_concurrent_invokes_scale_out(
    server: Any, lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    started = time.monotonic()
    # Each sleeps long enough that every launch is done before the first environment frees up
    # (a freed one is handed to an invocation still waiting for its launch), even when busy.
    results = _invoke_many(server.endpoint, name, [{"sleep": 1.5}] * 5)
    elapsed = time.monotonic() - started
    assert [(r.status, r.error) for r in results] == [(200, None)] * 5
    bodies = [r.json() for r in results]
    assert elapsed < 4.0, elapsed  # one after another: 7.5 s and more
    assert len({b["env_id"] for b in bodies}) == 5
    assert len({b["stream"] for b in bodies}) == 5
    assert [b["count"] for b in bodies] == [1] * 5
    assert all(r.cold for r in results)


def test_an_invocation_waiting_for_its_launch_takes_an_environment_that_frees_up_first(
    server: Any, lambda_client: Any, create_function: Create
) -> None:
    """AWS (execution environment lifecycle, proactive initialization): "If a pre-initialized
    execution environment becomes available while Lambda is initializing a new execution
    environment to process an invocation, Lambda can use the pre-initialized execution
    environment." The freed environment serves the waiting invocation warm; the launch it
    started finishes and waits idle, and its first invocation shows no Init Duration (its
    init ran ahead, as with provisioned concurrency)."""
    slow_init = "import time\ntime.sleep(2.0)  # a slow init\n" + fixture_code("counter")
    name = deploy(create_function, lambda_client, make_zip({"app.py": slow_init}))
    first = invoke(lambda_client, name, {})
    assert first.cold
    freed = first.json()["env_id"]
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(invoke, client(server.endpoint), name, {"sleep": 0.6})
        waiting_client = client(server.endpoint)
        time.sleep(0.3)  # the busy invocation holds the only environment
        started = time.monotonic()
        waiting = invoke(waiting_client, name, {})
        waited = time.monotonic() - started
        assert busy.result().json()["env_id"] == freed
    assert (waiting.json()["env_id"], waiting.cold) == (freed, False)
    assert waited < 1.5, waited  # not the 2 s init of the environment it launched
    time.sleep(2.5)  # that launch finishes its init and joins the idle environments
    pair = _invoke_many(server.endpoint, name, [{"sleep": 0.5}] * 2)
    bodies = [r.json() for r in pair]
    assert len({b["env_id"] for b in bodies}) == 2
    assert freed in {b["env_id"] for b in bodies}
    assert not any(r.cold for r in pair)
    assert sorted(b["count"] for b in bodies) == [1, 4]  # the launched one: its first invocation


def test_an_environment_serves_one_invocation_at_a_time(
    server: Any, lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    bodies: list[dict[str, Any]] = []
    for _ in range(3):
        results = _invoke_many(server.endpoint, name, [{"sleep": 0.2}] * 6)
        assert [(r.status, r.error) for r in results] == [(200, None)] * 6
        bodies += [r.json() for r in results]
    assert not any(b["overlap"] for b in bodies)  # /tmp/busy never seen by a second invoke
    by_env: dict[str, list[tuple[float, float]]] = {}
    for body in bodies:
        by_env.setdefault(body["env_id"], []).append((body["start"], body["end"]))
    assert len(by_env) < len(bodies)  # environments were reused, so the check means something
    for env_id, intervals in by_env.items():
        assert not intervals_overlap(intervals), (env_id, intervals)
    for body in bodies:  # each environment's own record: start, end, start, end, ...
        kinds = [line.split()[0] for line in body["intervals"]]
        assert kinds == ["start", "end"] * (len(kinds) // 2), body["intervals"]


@pytest.fixture
def keepalive_server(tmp_path: Path) -> Iterator[Any]:
    live = start_server(tmp_path / "d", env={"LAMINA_KEEPALIVE": "1"})
    yield live
    live.stop()


def test_idle_environment_is_reaped_after_keepalive(keepalive_server: Any) -> None:
    lam = client(keepalive_server.endpoint)
    name = unique_name()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": fixture_zip("counter")},
    )
    wait_active(lam, name)
    first = invoke(lam, name, {})
    second = invoke(lam, name, {})  # well within the keep-alive
    assert (first.json()["count"], first.cold) == (1, True)
    assert (second.json()["count"], second.cold) == (2, False)
    time.sleep(3)
    third = invoke(lam, name, {})
    assert (third.json()["count"], third.cold) == (1, True)
    assert third.json()["env_id"] != first.json()["env_id"]
    assert third.json()["stream"] != first.json()["stream"]


def test_update_code_runs_new_code_on_a_fresh_environment(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"))
    invoke(lambda_client, name, {})
    old = invoke(lambda_client, name, {}).json()
    assert (old["version"], old["count"]) == ("v1", 2)
    v2 = fixture_code("counter").replace('VERSION = "v1"', 'VERSION = "v2"')
    lambda_client.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": v2}))
    wait_updated(lambda_client, name)
    result = invoke(lambda_client, name, {})
    new = result.json()
    assert (new["version"], new["count"]) == ("v2", 1)
    assert new["env_id"] != old["env_id"]
    assert result.cold


def test_update_configuration_runs_on_a_fresh_environment(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(
        create_function,
        lambda_client,
        fixture_zip("counter"),
        Environment={"Variables": {"MARK": "a"}},
    )
    invoke(lambda_client, name, {})
    old = invoke(lambda_client, name, {}).json()
    assert (old["mark"], old["count"]) == ("a", 2)
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"MARK": "b"}}, Description="second"
    )
    wait_updated(lambda_client, name)
    result = invoke(lambda_client, name, {})
    new = result.json()
    assert (new["mark"], new["count"]) == ("b", 1)
    assert new["env_id"] != old["env_id"]
    assert result.cold


def test_invocation_in_flight_during_an_update_finishes_on_old_code(
    server: Any, lambda_client: Any, create_function: Create
) -> None:
    name = deploy(create_function, lambda_client, fixture_zip("counter"), Timeout=10)
    assert invoke(lambda_client, name, {}).json()["version"] == "v1"  # warm
    with ThreadPoolExecutor(1) as pool:
        # 3 s: the update (an upload, an unpack, a durable commit) lands well within it
        in_flight = pool.submit(invoke, client(server.endpoint), name, {"sleep": 3.0})
        time.sleep(0.4)
        v2 = fixture_code("counter").replace('VERSION = "v1"', 'VERSION = "v2"')
        lambda_client.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": v2}))
        wait_updated(lambda_client, name)
        updated_at = time.time()
        during = invoke(lambda_client, name, {})
        old = in_flight.result(timeout=30)
    first = old.json()
    assert (old.status, old.error) == (200, None)
    assert first["version"] == "v1"
    assert first["count"] == 2  # it ran on the warm v1 environment
    assert first["end"] > updated_at  # it really was still running when the update landed
    assert during.json()["version"] == "v2"
    assert during.json()["count"] == 1
    assert during.cold
    after = invoke(lambda_client, name, {})
    assert after.json()["version"] == "v2"
    assert after.json()["env_id"] != first["env_id"]  # the old environment was not kept
