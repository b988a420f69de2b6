"""Shared helpers for the integration suite (not a test module).

The conftest's plain functions are reached through `importlib` so that `mypy tests/integration`
type-checks this directory on its own (it cannot see tests/conftest.py as a module).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

_conftest: Any = importlib.import_module("conftest")

REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LAST_MODIFIED_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"
UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."
ZIPPED_LIMIT = 52_428_800
UNZIPPED_LIMIT = 262_144_000

T = TypeVar("T")


# --- conftest passthroughs -----------------------------------------------------------------------


def start_server(
    data_dir: Path, *args: str, env: Mapping[str, str | None] | None = None, port: int = 0
) -> Any:
    """conftest.start_server: a LiveServer (endpoint, data_dir, process, output, stop())."""
    return _conftest.start_server(data_dir, *args, env=env, port=port)


def make_zip(files: dict[str, str | bytes] | None = None) -> bytes:
    data: bytes = _conftest.make_zip(files)
    return data


def exec_zip(files: dict[str, bytes | str], executables: tuple[str, ...] = ("bootstrap",)) -> bytes:
    """A package whose `executables` (paths in the zip) have mode 0755, the rest 0644."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | (0o755 if name in executables else 0o644)) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def client(
    endpoint: str,
    region: str = REGION,
    *,
    access_key: str = "test",
    secret_key: str = "test",
    validate: bool = True,
    service: str = "lambda",
) -> Any:
    """A client (Lambda's by default) without retries; `validate=False` skips botocore's own
    checks so that the server's validation is what answers."""
    return boto3.client(
        service,  # type: ignore[call-overload]  # the service is a parameter here
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            retries={"max_attempts": 0, "mode": "standard"},
            parameter_validation=validate,
            read_timeout=300,
            max_pool_connections=16,
        ),
    )


# --- names, code, ARNs ---------------------------------------------------------------------


def unique_name(prefix: str = "fn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def function_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hello_zip(marker: str = "world") -> bytes:
    return make_zip(
        {"app.py": f"def handler(event, context):\n    return {{'hello': {marker!r}}}\n"}
    )


def create_params(name: str, zip_file: bytes | None = None, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_file if zip_file is not None else hello_zip()},
    }
    params.update(overrides)
    return params


# --- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsFailure:
    code: str
    status: int
    message: str


def failure(error: ClientError) -> AwsFailure:
    response: Any = error.response
    return AwsFailure(
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def expect_failure(call: Callable[[], object]) -> AwsFailure:
    """Run `call`, which must fail with a ClientError; return its code, status and message."""
    try:
        call()
    except ClientError as error:
        return failure(error)
    raise AssertionError("the call succeeded but an AWS error was expected")


# --- waiting -------------------------------------------------------------------------------


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Fetch until `done` holds or the deadline passes; returns the last value fetched."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_active(lam: Any, name: str, timeout: float = 30.0) -> dict[str, Any]:
    config: dict[str, Any] = poll(
        lambda: lam.get_function_configuration(FunctionName=name),
        lambda c: c.get("State") != "Pending",
        timeout,
    )
    assert config["State"] == "Active", config
    return config


def wait_updated(lam: Any, name: str, timeout: float = 30.0) -> dict[str, Any]:
    config: dict[str, Any] = poll(
        lambda: lam.get_function_configuration(FunctionName=name),
        lambda c: c.get("LastUpdateStatus") != "InProgress" and c.get("State") != "Pending",
        timeout,
    )
    assert config["LastUpdateStatus"] == "Successful", config
    return config


# --- raw HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def error_type(self) -> str | None:
        value: str | None = self.headers.get("x-amzn-ErrorType")
        return value


def raw_request(
    endpoint: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: str = "",
    headers: dict[str, str] | None = None,
    region: str = REGION,
    access_key: str = "test",
    secret_key: str = "test",
    sign: bool = True,
    timeout: float = 300.0,
) -> RawResponse:
    """Send one request exactly as given (path already percent-encoded), SigV4-signed by
    botocore unless `sign` is false."""
    url = f"{endpoint}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if sign:
        SigV4Auth(Credentials(access_key, secret_key), "lambda", region).add_auth(request)
    sent = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    with httpx.Client(timeout=timeout) as http:
        response = http.request(method, url, content=body, headers=sent)
        return RawResponse(response.status_code, response.headers, response.content)


def download(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET a URL with urllib (no signing); returns status, headers and body, even on errors."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers.items()), error.read()


# --- data directory ---------------------------------------------------------------------------


def code_listing(data_dir: Path) -> set[str]:
    """Every blob file and every extracted code tree (work in progress ignored)."""
    found: set[str] = set()
    blobs = data_dir / "blobs"
    if blobs.is_dir():
        for path in blobs.rglob("*"):
            if not path.name.startswith("."):
                found.add(str(path.relative_to(data_dir)))
    code = data_dir / "code"
    if code.is_dir():
        for path in code.iterdir():
            if not path.name.startswith("."):
                found.add(str(path.relative_to(data_dir)))
    return found


def remove_tree(path: Path) -> None:
    """Remove a read-only extracted tree."""
    for root, dirs, _files in os.walk(path):
        os.chmod(root, 0o700)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
    shutil.rmtree(path)


# --- zips -------------------------------------------------------------------------------------


def zip_entries(entries: list[tuple[zipfile.ZipInfo | str, bytes]], level: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for info, content in entries:
            archive.writestr(info, content)
    return buffer.getvalue()


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix, so external_attr carries the mode
    info.external_attr = (0o120777 << 16) & 0xFFFFFFFF
    info.compress_type = zipfile.ZIP_STORED
    return info, target.encode()


def incompressible_zip(payload_bytes: int) -> bytes:
    """A valid zip holding `payload_bytes` of random (incompressible) data, stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("blob.bin", os.urandom(payload_bytes))
    return buffer.getvalue()


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMINA_"))}
    env.update(extra or {})
    return env


AWS_CLI = str(Path(sys.executable).with_name("aws"))  # pip's AWS CLI (v1) in the venv


def aws_cli_env(endpoint: str | None, home: Path) -> dict[str, str]:
    """What the AWS CLI sees: the endpoint (if any), the dev keys and a scratch HOME."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
        "HOME": str(home),
    }
    return base_env(env | ({"AWS_ENDPOINT_URL": endpoint} if endpoint else {}))


def aws_json(endpoint: str, home: Path, *args: str) -> Any:
    """`aws <args> --output json`, which must succeed; its parsed output (None if empty)."""
    done = subprocess.run(
        [AWS_CLI, *args, "--output", "json"],
        env=aws_cli_env(endpoint, home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else None


def lamina_cli(endpoint: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`lamina <args>` as a user runs it, pointed at `endpoint` (None: no server)."""
    extra = {"HOME": "/tmp"} | ({"LAMINA_ENDPOINT": endpoint} if endpoint else {})
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        env=base_env(extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Launched:
    """A `lamina server` started with an arbitrary command line."""

    process: subprocess.Popen[str]
    output: list[str]
    endpoint: str | None
    _pump: threading.Thread

    def stop(self, kill: bool = False) -> None:
        _conftest.stop_process(self.process, self._pump, kill)


def launch(args: list[str], env: dict[str, str], timeout: float = 60.0) -> Launched:
    """Run `python -m lamina server <args>`; returns once it announced readiness or exited."""
    command = [sys.executable, "-m", "lamina", "server", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if not found and "Lamina listening on " in line:
                found.append(line.split("Lamina listening on ", 1)[1].split()[0])
                ready.set()
        ready.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    launched = Launched(process, output, None, thread)
    if not ready.wait(timeout):
        launched.stop(kill=True)
        raise AssertionError("lamina server neither started nor exited:\n" + "".join(output))
    launched.endpoint = found[0] if found else None
    return launched


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}
