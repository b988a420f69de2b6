"""Custom runtimes (`provided.al2023`, `provided.al2`, `provided`): the function's `bootstrap`
talks to the Runtime API served inside its sandbox (runtime-api.md §1). Real peers: a shell
script with curl, a C program compiled here, the official Python runtime interface client
(`awslambdaric`, vendored into the zip with pip), and a stdlib runtime that misuses the API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_probes import with_command
from lamina_support import (
    client,
    create_params,
    exec_zip,
    function_arn,
    poll,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions" / "provided"
PYTHON_IN_SANDBOX = "/var/lang/bin/python3.11"  # the bridge's interpreter, mounted as AWS does

SHELL_BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "shell runtime up, handler $_HANDLER"
# what it was started with (test_bootstrap_starts_with_every_signal_at_its_default)
SIGNALS=$(grep -E '^Sig(Ign|Blk):' /proc/$$/status | tr -d ' \t' | tr '\n' ' ')
PIPELINE=$( (yes | head -n 1) 2>&1 | tr '\n' ' ')
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  DEADLINE=$(grep -Fi Lambda-Runtime-Deadline-Ms "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "serving $ID"
  BODY="{\"event\": $EVENT, \"id\": \"$ID\", \"deadline\": $DEADLINE, \"cwd\": \"$(pwd)\",
    \"signals\": \"$SIGNALS\", \"pipeline\": \"$PIPELINE\"}"
  curl -sS -X POST "$API/invocation/$ID/response" -d "$BODY" >/dev/null
done
"""


def tree_zip(root: Path, extra: dict[str, bytes | str]) -> bytes:
    files: dict[str, bytes | str] = {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }
    return exec_zip({**files, **extra})


def deploy(lam: Any, code: bytes, runtime: str = "provided.al2023", **overrides: Any) -> str:
    name = unique_name("custom")
    # A shell bootstrap forks a dozen processes per invocation at a 128 MB function's 7% CPU
    # share (0.4-0.7 s on an idle machine): room beyond the 3 s default for a loaded one.
    overrides = {"Timeout": 10, **overrides}
    params = create_params(name, code, Runtime=runtime, Handler="function.handler", **overrides)
    lam.create_function(**params)
    wait_active(lam, name)
    return name


def invoke(lam: Any, name: str, event: Any) -> tuple[dict[str, Any], Any]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    return answer, json.loads(answer["Payload"].read())


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2", "provided"])
def test_shell_bootstrap(server: Any, runtime: str) -> None:
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"bootstrap": SHELL_BOOTSTRAP}), runtime)
    for n in range(3):  # warm reuse: the same bootstrap serves them all
        answer, body = invoke(lam, name, {"n": n})
        assert answer.get("FunctionError") is None, body
        assert body["event"] == {"n": n}
        assert body["id"] == answer["ResponseMetadata"]["RequestId"]
        assert body["cwd"] == "/var/task"
        assert body["deadline"] > 1_700_000_000_000  # epoch milliseconds
    assert answer["ExecutedVersion"] == "$LATEST"


def test_bootstrap_starts_with_every_signal_at_its_default(server: Any) -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: a
    bootstrap started as it is would get EPIPE where a pipe's writer should die quietly
    (`yes | head -n 1` would print "Broken pipe"). AWS's init is a Go program, which ignores
    no signal, so its runtime starts with every disposition at its default; Python's own
    subprocess restores these two for the same reason (`restore_signals`, _Py_RestoreSignals)."""
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"bootstrap": SHELL_BOOTSTRAP}))
    answer, body = invoke(lam, name, {})
    assert answer.get("FunctionError") is None, body
    masks = {k: int(v, 16) for k, v in (field.split(":") for field in body["signals"].split())}
    ignored = {n + 1 for n in range(64) if masks["SigIgn"] >> n & 1}
    # glibc's posix_spawn leaves its own two internal signals ignored, for every program it
    # starts; no program can name them (SIGRTMIN is 34)
    assert ignored <= {32, 33}, ignored
    assert masks["SigBlk"] == 0, masks
    assert body["pipeline"] == "y ", body  # `yes` died of SIGPIPE, saying nothing


def test_c_bootstrap(server: Any, tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to compile the bootstrap")
    binary = tmp_path / "bootstrap"
    subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(FUNCTIONS / "bootstrap.c")], check=True, timeout=60
    )
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"bootstrap": binary.read_bytes()}))
    for n in range(3):
        answer, body = invoke(lam, name, {"n": n, "text": "ü"})
        assert answer.get("FunctionError") is None, body
        assert body == {"c": {"n": n, "text": "ü"}, "arn": function_arn(name)}


@pytest.fixture(scope="module")
def awslambdaric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official Python runtime interface client, installed the way users vendor it."""
    target = tmp_path_factory.mktemp("ric")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
         "awslambdaric==4.2.2"],
        check=True,
        timeout=300,
    )  # fmt: skip
    return target


RIC_HANDLER = """
import os

def handler(event, context):
    return {
        "event": event,
        "request": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
    }

def fails(event, context):
    raise KeyError("missing")
"""


def test_awslambdaric_runs_a_python_handler(server: Any, awslambdaric: Path) -> None:
    bootstrap = f'#!/bin/sh\nexec {PYTHON_IN_SANDBOX} -m awslambdaric "$_HANDLER"\n'
    code = tree_zip(awslambdaric, {"bootstrap": bootstrap, "function.py": RIC_HANDLER})
    lam = client(server.endpoint)
    name = deploy(lam, code, Timeout=10)
    answer, body = invoke(lam, name, {"via": "ric"})
    assert answer.get("FunctionError") is None, body
    assert body["event"] == {"via": "ric"}
    assert body["request"] == answer["ResponseMetadata"]["RequestId"]
    assert body["arn"] == function_arn(name)
    assert 0 < body["remaining"] <= 10_000
    assert body["runtime_api"] == "127.0.0.1:9001"
    # the same handler module, failing: the client's error document reaches the caller
    lam.update_function_configuration(FunctionName=name, Handler="function.fails")
    wait_active(lam, name)
    poll_answer, failure = invoke(lam, name, {})
    assert poll_answer["FunctionError"] == "Unhandled"
    assert failure["errorType"] == "KeyError"
    assert failure["errorMessage"] == "'missing'"


# --- misuse of the Runtime API -----------------------------------------------------------------


@pytest.fixture(scope="module")
def misuse(server: Any) -> Iterator[tuple[Any, str]]:
    lam = client(server.endpoint)
    bootstrap = f"#!/bin/sh\nexec {PYTHON_IN_SANDBOX} /var/task/misuse.py\n"
    code = exec_zip({"bootstrap": bootstrap, "misuse.py": (FUNCTIONS / "misuse.py").read_text()})
    name = deploy(lam, code, Timeout=10, MemorySize=512)
    yield lam, name
    lam.delete_function(FunctionName=name)


def observed(lam: Any, name: str, case: str) -> dict[str, Any]:
    _, report = invoke(lam, name, {"case": "report"})
    found: list[dict[str, Any]] = [s for s in report["seen"] if s["case"] == case]
    assert found, report
    return found[-1]


def test_answer_for_an_unknown_request_id(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    _, body = invoke(lam, name, {"case": "wrong-id"})
    assert body == {"answered": True}
    seen = observed(lam, name, "wrong-id")
    # runtime-api.md §1.3 (the emulator's request-id check)
    assert seen["status"] == 400
    assert seen["body"] == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}


def test_a_second_answer_is_refused(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    _, body = invoke(lam, name, {"case": "twice"})
    assert body == {"first": True}
    seen = observed(lam, name, "twice")
    assert (seen["status"], seen["body"]["errorType"]) == (400, "InvalidRequestID")


def test_next_before_answering_is_an_invalid_state_transition(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    _, body = invoke(lam, name, {"case": "next-while-busy"})
    assert body == {"answered": True}
    seen = observed(lam, name, "next-while-busy")
    assert (seen["status"], seen["body"]["errorType"]) == (403, "InvalidStateTransition")


def test_an_oversized_response(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    answer, body = invoke(lam, name, {"case": "oversize"})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    seen = observed(lam, name, "oversize")
    assert seen["status"] == 413
    assert seen["body"] == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }


def test_error_documents_reach_the_caller(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    answer, body = invoke(lam, name, {"case": "error"})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "it broke", "errorType": "CustomError", "stackTrace": ["a"]}
    # not JSON: the document is built from Lambda-Runtime-Function-Error-Type and the body
    answer, body = invoke(lam, name, {"case": "malformed-error"})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Function.BadBody", "errorMessage": "not json at all"}


def test_a_runtime_that_exits_is_replaced(misuse: tuple[Any, str]) -> None:
    lam, name = misuse
    answer, body = invoke(lam, name, {"case": "exit"})
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 7")
    _, report = invoke(lam, name, {"case": "report"})  # a fresh environment
    assert report == {"seen": []}


# --- bad bootstraps --------------------------------------------------------------------------


def test_missing_bootstrap(server: Any) -> None:
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"readme.txt": "no bootstrap here"}))
    answer, body = invoke(lam, name, {})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": "Couldn't find valid bootstrap(s): [/var/task/bootstrap]",
    }


def test_bootstrap_not_executable(server: Any) -> None:
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"bootstrap": SHELL_BOOTSTRAP}, executables=()))
    answer, body = invoke(lam, name, {})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": "fork/exec /var/task/bootstrap: permission denied",
    }


def test_bootstrap_that_exits_at_once(server: Any) -> None:
    lam = client(server.endpoint)
    name = deploy(lam, exec_zip({"bootstrap": "#!/bin/sh\necho giving up\nexit 3\n"}))
    answer, body = invoke(lam, name, {})
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("exit status 3")


def test_init_error_posted_by_the_runtime(server: Any) -> None:
    lam = client(server.endpoint)
    bootstrap = f"#!/bin/sh\nINIT_FAIL=1 exec {PYTHON_IN_SANDBOX} /var/task/misuse.py\n"
    code = exec_zip({"bootstrap": bootstrap, "misuse.py": (FUNCTIONS / "misuse.py").read_text()})
    name = deploy(lam, code)
    answer, body = invoke(lam, name, {})
    assert answer["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "cannot start", "errorType": "Runtime.Custom"}


def test_bootstrap_that_never_polls_fails_init_and_leaves_nothing(server: Any) -> None:
    """Init is limited to 10 s (execution-environment.md); then the environment is destroyed."""
    lam = client(server.endpoint)
    marker = "61.25"  # a sleep no other test runs, to find its process
    name = deploy(lam, exec_zip({"bootstrap": f"#!/bin/sh\nexec sleep {marker}\n"}), Timeout=3)
    answer, body = invoke(lam, name, {})
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InitTimeout"
    left = poll(lambda: with_command(f"sleep {marker}"), lambda found: not found, 10)
    assert left == []
