"""`lamina logs` and the real AWS CLI v2's `aws logs tail` (--since, --follow) against Lamina."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_support import (
    aws_cli_env,
    base_env,
    client,
    create_params,
    lamina_cli,
    make_zip,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

AWS_V2 = "/usr/bin/aws"  # Debian's AWS CLI v2 (`logs tail`); the venv's `aws` is v1
HANDLER = "def handler(event, context):\n    print(event['say'])\n    return 'ok'\n"


def deploy_and_say(endpoint: str, text: str) -> str:
    lam = client(endpoint)
    name = unique_name("tail")
    lam.create_function(**create_params(name, make_zip({"app.py": HANDLER})))
    wait_active(lam, name)
    say(endpoint, name, text)
    return name


def say(endpoint: str, name: str, text: str) -> None:
    client(endpoint).invoke(FunctionName=name, Payload=json.dumps({"say": text}))


def lamina_env(server: Any) -> dict[str, str]:
    return base_env({"LAMINA_ENDPOINT": server.endpoint})


def aws_env(tmp_path: Path) -> dict[str, str]:
    return aws_cli_env(None, tmp_path / "home")  # Debian's CLI 2.9 takes --endpoint-url


def lamina(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return lamina_cli(server.endpoint, "logs", *args)


class Follower:
    """A long-running command whose output lines are read as they come."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> list[str]:
        """Lines up to and including the first one containing `text`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if text in line:
                return seen
        raise AssertionError(f"{text!r} never came; saw {seen!r}")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=20)
        self._reader.join(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def follower(command: list[str], env: dict[str, str]) -> Iterator[Follower]:
    running = Follower(command, env)
    try:
        yield running
    finally:
        running.stop()


# --- lamina logs -------------------------------------------------------------------------------


def test_lamina_logs_prints_events(server: Any) -> None:
    name = deploy_and_say(server.endpoint, "hello from lamina logs")
    done = lamina(server, name)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.endswith(" hello from lamina logs") for line in lines), lines
    assert lines[0].split(" ")[2] == "START"
    stamp, stream = lines[0].split(" ")[:2]
    assert stamp.endswith("+00:00")
    assert stream.startswith(time.strftime("%Y/%m/%d/", time.gmtime()) + "[$LATEST]")
    assert lamina(server, name, "--filter", "hello").stdout.count("\n") == 1
    assert lamina(server, name, "--since", "2030-01-01T00:00:00").stdout == ""


def test_lamina_logs_errors(server: Any) -> None:
    missing = lamina(server, "no-such-function")
    assert missing.returncode == 1
    assert missing.stderr.startswith("lamina: ResourceNotFoundException")
    bad = lamina(server, "x", "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since" in bad.stderr


def test_lamina_logs_follow(server: Any) -> None:
    name = deploy_and_say(server.endpoint, "before following")
    command = [sys.executable, "-m", "lamina", "logs", name, "--follow", "--since", "5m"]
    with follower(command, lamina_env(server)) as running:
        running.wait_for("before following")
        say(server.endpoint, name, "while following")
        later = running.wait_for("while following")
        assert not any("before following" in line for line in later)  # printed once


# --- aws logs tail (AWS CLI v2) ------------------------------------------------------------


needs_cli_v2 = pytest.mark.skipif(
    not os.path.exists(AWS_V2) or shutil.which(AWS_V2) is None,
    reason="AWS CLI v2 missing: apt-get install -y awscli (.ci/run installs it)",
)


@needs_cli_v2
def test_aws_logs_tail_since(server: Any, tmp_path: Path) -> None:
    name = deploy_and_say(server.endpoint, "tail me")
    done = subprocess.run(
        [
            AWS_V2,
            "--endpoint-url",
            server.endpoint,
            "logs",
            "tail",
            f"/aws/lambda/{name}",
            "--since",
            "10m",
        ],
        env=aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.endswith(" tail me") for line in lines), lines
    assert any(" START RequestId: " in line for line in lines)


@needs_cli_v2
def test_aws_logs_tail_follow(server: Any, tmp_path: Path) -> None:
    name = deploy_and_say(server.endpoint, "first words")
    command = [
        AWS_V2, "--endpoint-url", server.endpoint, "logs", "tail", f"/aws/lambda/{name}",
        "--follow", "--since", "10m", "--format", "short",
    ]  # fmt: skip
    with follower(command, aws_env(tmp_path)) as running:
        running.wait_for("first words")
        say(server.endpoint, name, "said later")
        later = running.wait_for("said later", timeout=60)  # the CLI polls every 5 s
        assert not any("first words" in line for line in later)
