"""`lamina invoke NAME [PAYLOAD] [--log]` against a live server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from lamina_support import ROLE, client, lamina_cli, make_zip, unique_name, wait_active

ECHO = "def handler(event, context):\n    print('seen', event)\n    return {'echo': event}\n"
FAIL = "def handler(event, context):\n    raise ValueError('nope')\n"


def lamina(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return lamina_cli(server.endpoint, *args)


def deploy(server: Any, code: str) -> str:
    lam = client(server.endpoint)
    name = unique_name("cli-invoke")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
    )
    wait_active(lam, name)
    return name


def test_invoke_prints_the_result_and_the_log_tail(server: Any) -> None:
    name = deploy(server, ECHO)
    done = lamina(server, "invoke", name, '{"a": 1}', "--log")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"echo": {"a": 1}}
    assert "START RequestId: " in done.stderr
    assert "seen {'a': 1}" in done.stderr
    assert "REPORT RequestId: " in done.stderr


def test_invoke_of_a_failing_function_exits_4_with_the_error(server: Any) -> None:
    name = deploy(server, FAIL)
    done = lamina(server, "invoke", name)
    assert done.returncode == 4
    assert json.loads(done.stdout)["errorType"] == "ValueError"


def test_invoke_of_a_missing_function_exits_1(server: Any) -> None:
    done = lamina(server, "invoke", "no-such-function")
    assert done.returncode == 1
    assert "ResourceNotFoundException" in done.stderr
