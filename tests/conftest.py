"""Shared fixtures: a live `lamina server` subprocess and real AWS clients pointed at it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
READY = re.compile(r"Lamina listening on (http://\S+)")


@dataclass
class LiveServer:
    """A running `lamina server` process with its own data directory."""

    endpoint: str
    data_dir: Path
    process: subprocess.Popen[str]
    output: list[str]
    pump: threading.Thread | None = None

    def stop(self, kill: bool = False) -> None:
        stop_process(self.process, self.pump, kill)


def stop_process(
    process: subprocess.Popen[str], pump: threading.Thread | None, kill: bool = False
) -> None:
    """SIGTERM (or SIGKILL) a server, wait for it, and close its output once read to EOF."""
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
    process.wait(timeout=20)
    if pump is not None:
        pump.join(timeout=20)  # reads to EOF now that the process is gone
    if process.stdout is not None:
        process.stdout.close()


def server_env(data_dir: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The server's environment: ours without AWS_/LAMINA_ settings, then `extra` (a None
    value leaves that variable unset)."""
    env: dict[str, str | None] = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMINA_"))
    }
    # Two ready stems per runtime, not the memory-sized default (47 here): the suite starts
    # dozens of servers, and filling each pool would load the machine under timing-sensitive
    # tests. test_stem_pool_size_is_a_setting checks the default.
    env["LAMINA_STEM_POOL"] = "2"
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


def start_server(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str | None] | None = None,
    port: int = 0,
) -> LiveServer:
    """Start `lamina server` and wait for its readiness line (an event, never a sleep)."""
    command = [
        sys.executable, "-m", "lamina", "server",
        "--port", str(port), "--data-dir", str(data_dir), *args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server_env(data_dir, env),
    )
    output: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        match = READY.search(line)
        if match:
            return LiveServer(match.group(1), data_dir, process, output, _drain(process, output))
    process.wait(timeout=20)
    raise RuntimeError("lamina server exited before it was ready:\n" + "".join(output))


def _drain(process: subprocess.Popen[str], output: list[str]) -> threading.Thread:
    """Keep reading the server's output so it never blocks on a full pipe."""

    def pump() -> None:
        assert process.stdout is not None
        output.extend(process.stdout)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("lamina-data"))
    yield live
    live.stop()


def make_client(endpoint: str, service: str = "lambda", **kwargs: Any) -> Any:
    factory: Any = (
        boto3.client
    )  # typed per service by the stubs; tests pick the service at run time
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=kwargs.pop("region_name", REGION),
        aws_access_key_id=kwargs.pop("aws_access_key_id", "test"),
        aws_secret_access_key=kwargs.pop("aws_secret_access_key", "test"),
        config=Config(retries={"max_attempts": 0, "mode": "standard"}),
        **kwargs,
    )


@pytest.fixture
def lambda_client(server: LiveServer) -> Any:
    return make_client(server.endpoint)


def make_zip(files: dict[str, str | bytes] | None = None) -> bytes:
    """A deployment package; by default a hello-world Python handler in app.py. Byte for byte
    the same for the same files (fixed timestamps), so its CodeSha256 is predictable."""
    files = files or {"app.py": "def handler(event, context):\n    return {'hello': 'world'}\n"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


@pytest.fixture
def function_name() -> str:
    return f"fn-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def create_function(lambda_client: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    """Factory: creates functions and deletes them after the test."""
    created: list[str] = []

    def create(name: str | None = None, **overrides: Any) -> dict[str, Any]:
        name = name or f"fn-{uuid.uuid4().hex[:12]}"
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": make_zip()},
        }
        params.update(overrides)
        response: dict[str, Any] = lambda_client.create_function(**params)
        created.append(name)
        return response

    yield create
    for name in created:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)
