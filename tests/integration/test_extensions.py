"""Extensions (runtime-api.md §2, §4): executables a layer brings in /opt/extensions start before
the runtime, register with the Extensions API, receive INVOKE and SHUTDOWN events, and their
output goes to the function's log. With our Python runtime and with a custom runtime."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from lamina_support import (
    client,
    create_params,
    exec_zip,
    make_zip,
    poll,
    unique_name,
    wait_active,
    wait_updated,
)

pytestmark = pytest.mark.integration

EXTENSION = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
NAME=$(basename "$0")
echo "EXT $NAME missing-id $(curl -s -o /dev/null -w '%{http_code}' "$API/event/next")"
echo "EXT $NAME pipeline $( (yes | head -n 1) 2>&1 | tr '\n' ' ')"
H=$(mktemp)
INFO=$(curl -sS -D "$H" -X POST "$API/register" -H "Lambda-Extension-Name: $NAME" \
  -d '{"events": ["INVOKE", "SHUTDOWN"]}')
ID=$(grep -Fi Lambda-Extension-Identifier "$H" | tr -d '[:space:]' | cut -d: -f2)
echo "EXT $NAME registered $INFO handler=${_HANDLER:-hidden}"
while true; do
  EVENT=$(curl -sS "$API/event/next" -H "Lambda-Extension-Identifier: $ID")
  echo "EXT $NAME event $EVENT"
  case "$EVENT" in *SHUTDOWN*) echo "EXT $NAME done"; exit 0;; esac
done
"""
PYTHON = "def handler(event, context):\n    return {'request': context.aws_request_id}\n"
SHELL_RUNTIME = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp); EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -X POST "$API/invocation/$ID/response" -d "{\"request\": \"$ID\"}" >/dev/null
done
"""


def publish_layer(lam: Any, files: dict[str, bytes | str], executables: tuple[str, ...]) -> str:
    layer = lam.publish_layer_version(
        LayerName=unique_name("ext"), Content={"ZipFile": exec_zip(files, executables)}
    )
    arn: str = layer["LayerVersionArn"]
    return arn


def log_lines(logs: Any, name: str) -> list[str]:
    try:
        found = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"EXT"')
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [str(event["message"]).rstrip("\n") for event in found["events"]]


def wait_for(logs: Any, name: str, done: Callable[[list[str]], bool]) -> list[str]:
    lines = poll(lambda: log_lines(logs, name), done, timeout=20)
    assert done(lines), lines
    return lines


@pytest.fixture
def extension_layer(server: Any) -> str:
    return publish_layer(
        client(server.endpoint), {"extensions/telemetry": EXTENSION}, ("extensions/telemetry",)
    )


@pytest.mark.parametrize("runtime", ["python3.12", "provided.al2023"])
def test_extension_gets_invoke_and_shutdown_events(
    server: Any, extension_layer: str, runtime: str
) -> None:
    lam, logs = client(server.endpoint), client(server.endpoint, service="logs")
    name = unique_name("ext-fn")
    code = (
        make_zip({"app.py": PYTHON})
        if runtime.startswith("python")
        else exec_zip({"bootstrap": SHELL_RUNTIME})
    )
    params = create_params(name, code, Runtime=runtime, Layers=[extension_layer], Timeout=10)
    lam.create_function(**params)
    wait_active(lam, name)
    ids = []
    for _ in range(2):
        answer = lam.invoke(FunctionName=name, Payload=b"{}")
        assert answer.get("FunctionError") is None
        body = json.loads(answer["Payload"].read())
        assert body["request"] == answer["ResponseMetadata"]["RequestId"]
        ids.append(body["request"])

    def invoked(lines: list[str]) -> bool:
        return all(any(f'"requestId": "{i}"' in line for line in lines) for i in ids)

    lines = wait_for(logs, name, invoked)
    # registration answered with the function's identity; extensions do not see _HANDLER
    (registered,) = [line for line in lines if " registered " in line]
    info = json.loads(registered.split(" registered ", 1)[1].rsplit(" handler=", 1)[0])
    assert info == {"functionName": name, "functionVersion": "$LATEST", "handler": "app.handler"}
    assert registered.endswith("handler=hidden")
    assert "EXT telemetry missing-id 403" in lines  # Extension.MissingExtensionIdentifier
    # SIGPIPE at its default: `yes` ends quietly (test_custom_runtimes has the runtime's case)
    assert "EXT telemetry pipeline y " in lines
    invoke_events = [json.loads(line.split(" event ", 1)[1]) for line in lines if " event " in line]
    assert [e["eventType"] for e in invoke_events] == ["INVOKE", "INVOKE"]
    assert invoke_events[0]["invokedFunctionArn"].endswith(f":function:{name}")
    assert invoke_events[0]["deadlineMs"] > 1_700_000_000_000

    # a configuration change retires the environment: the extension gets SHUTDOWN and exits
    lam.update_function_configuration(FunctionName=name, Description="retire it")
    wait_updated(lam, name)
    lam.invoke(FunctionName=name, Payload=b"{}")  # the pool notices the new revision
    lines = wait_for(logs, name, lambda found: "EXT telemetry done" in found)
    shutdown = [line for line in lines if '"SHUTDOWN"' in line]
    assert shutdown, lines
    event = json.loads(shutdown[0].split(" event ", 1)[1])
    assert event["shutdownReason"] == "spindown"


def test_extension_that_does_not_register_fails_init(server: Any) -> None:
    lam = client(server.endpoint)
    layer = publish_layer(
        lam, {"extensions/broken": "#!/bin/sh\necho broken extension\nexit 3\n"},
        ("extensions/broken",),
    )  # fmt: skip
    name = unique_name("ext-broken")
    lam.create_function(**create_params(name, make_zip({"app.py": PYTHON}), Layers=[layer]))
    wait_active(lam, name)
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    body = json.loads(answer["Payload"].read())
    assert body["errorType"] == "Extension.Crash"
    assert "broken" in body["errorMessage"]
