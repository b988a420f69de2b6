"""The user-facing CLI (`lamina functions ls`, `lamina deploy`, `lamina delete`) as a user runs
it: a subprocess against the live session server, checked with boto3."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pty
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from lamina.cli.client import Target, Unreachable, signed_json_request
from lamina.cli.functions import package_directory

_conftest: Any = importlib.import_module("conftest")

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HANDLER_V1 = "def handler(event, context):\n    return {'version': 1}\n"
HANDLER_V2 = "def handler(event, context):\n    return {'version': 2}\n"


# --- helpers ------------------------------------------------------------------------------


def cli_env(server: Any, **extra: str) -> dict[str, str]:
    env: dict[str, str] = _conftest.server_env(
        server.data_dir, {"LAMINA_ENDPOINT": server.endpoint}
    )
    env.update(extra)
    return env


def run_cli(
    server: Any, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        env=env if env is not None else cli_env(server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_cli_with_tty_stderr(server: Any, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal, so click renders its progress bar."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "lamina", *args],
        env=cli_env(server),
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    received: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the child closed its end
                return
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=120)
    finally:
        reader.join(timeout=10)
        os.close(master)
    return process.returncode, stdout, b"".join(received).decode("utf-8", "replace")


def write_function(directory: Path, handler_source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(handler_source)
    return directory


def closed_port_endpoint() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def field(stdout: str, name: str) -> str:
    match = re.search(rf"^{name}:\s+(\S+)$", stdout, re.MULTILINE)
    assert match, f"{name} missing from:\n{stdout}"
    return match.group(1)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("lamina: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def lam(server: Any) -> Any:
    return _conftest.make_client(server.endpoint)


@pytest.fixture
def cleanup(lam: Any) -> Iterator[list[str]]:
    """Names of functions to delete after the test (already-deleted ones are fine)."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=name)


# --- deploy -------------------------------------------------------------------------------


def test_deploy_creates_then_updates_code(
    server: Any, lam: Any, function_name: str, tmp_path: Path, cleanup: list[str]
) -> None:
    source = write_function(tmp_path / "fn", HANDLER_V1)
    cleanup.append(function_name)

    created = run_cli(
        server, "deploy", str(source), "--name", function_name,
        "--runtime", "python3.12", "--handler", "app.handler",
        "--memory", "256", "--env", "GREETING=hi", "--description", "from the cli",
    )  # fmt: skip

    assert created.returncode == 0, created.stderr
    assert f"Created function {function_name}" in created.stdout
    assert field(created.stdout, "FunctionArn").endswith(f":function:{function_name}")
    assert field(created.stdout, "State") == "Active"
    first = lam.get_function_configuration(FunctionName=function_name)
    assert first["CodeSha256"] == field(created.stdout, "CodeSha256")
    assert first["Role"] == "arn:aws:iam::000000000000:role/lamina"
    assert first["MemorySize"] == 256
    assert first["Environment"]["Variables"] == {"GREETING": "hi"}
    assert first["Description"] == "from the cli"

    write_function(source, HANDLER_V2)
    updated = run_cli(server, "deploy", str(source), "--name", function_name)

    assert updated.returncode == 0, updated.stderr
    assert f"Updated code of function {function_name}" in updated.stdout
    second = lam.get_function_configuration(FunctionName=function_name)
    assert second["CodeSha256"] != first["CodeSha256"]
    assert second["CodeSha256"] == field(updated.stdout, "CodeSha256")
    assert second["MemorySize"] == 256  # configuration untouched without flags


def test_deploy_updates_configuration_when_flags_given(
    server: Any, lam: Any, function_name: str, tmp_path: Path, cleanup: list[str]
) -> None:
    source = write_function(tmp_path / "fn", HANDLER_V1)
    cleanup.append(function_name)
    common = ["deploy", str(source), "--name", function_name]
    first = run_cli(server, *common, "--runtime", "python3.12", "--handler", "app.handler")
    assert first.returncode == 0, first.stderr

    result = run_cli(server, *common, "--timeout", "42", "--env", "MODE=prod", "--role", ROLE)

    assert result.returncode == 0, result.stderr
    assert "Updated code and configuration" in result.stdout
    config = lam.get_function_configuration(FunctionName=function_name)
    assert config["Timeout"] == 42
    assert config["Role"] == ROLE
    assert config["Environment"]["Variables"] == {"MODE": "prod"}
    assert config["Runtime"] == "python3.12"
    assert config["LastUpdateStatus"] == "Successful"


def test_deploy_large_package_shows_upload_progress(
    server: Any, lam: Any, function_name: str, tmp_path: Path, cleanup: list[str]
) -> None:
    source = write_function(tmp_path / "big", HANDLER_V1)
    (source / "blob.bin").write_bytes(os.urandom(1_500_000))  # incompressible: zip > 1 MiB
    cleanup.append(function_name)
    args = ["deploy", str(source), "--name", function_name]

    created = run_cli(server, *args, "--runtime", "python3.12", "--handler", "app.handler")

    assert created.returncode == 0, created.stderr
    assert f"Uploading {function_name}" in created.stderr  # not a terminal: the label only
    config = lam.get_function_configuration(FunctionName=function_name)
    assert config["CodeSize"] > 1024 * 1024
    assert config["CodeSha256"] == field(created.stdout, "CodeSha256")

    (source / "blob.bin").write_bytes(os.urandom(1_500_000))
    code, stdout, terminal = run_cli_with_tty_stderr(server, *args)

    assert code == 0, terminal
    percentages = {int(p) for p in re.findall(r"(\d+)%", terminal)}
    assert 100 in percentages
    assert len(percentages) >= 3, terminal  # the bar advanced chunk by chunk
    assert lam.get_function_configuration(FunctionName=function_name)["CodeSha256"] == field(
        stdout, "CodeSha256"
    )


def test_deploy_server_rejection_is_exit_1(server: Any, function_name: str, tmp_path: Path) -> None:
    source = write_function(tmp_path / "fn", HANDLER_V1)

    result = run_cli(
        server, "deploy", str(source), "--name", function_name,
        "--runtime", "cobol85", "--handler", "app.handler",
    )  # fmt: skip

    assert_one_line_error(result, 1, "lamina: InvalidParameterValueException: ")


def test_deploy_new_function_needs_runtime_and_handler(
    server: Any, function_name: str, tmp_path: Path
) -> None:
    source = write_function(tmp_path / "fn", HANDLER_V1)

    result = run_cli(server, "deploy", str(source), "--name", function_name)

    assert result.returncode == 2
    assert "--runtime and --handler are required" in result.stderr


def test_package_is_deterministic_and_keeps_exec_bits(tmp_path: Path) -> None:
    source = write_function(tmp_path / "fn", HANDLER_V1)
    (source / "lib").mkdir()
    (source / "lib" / "util.py").write_text("X = 1\n")
    (source / "bootstrap").write_text("#!/bin/sh\n")
    (source / "bootstrap").chmod(0o755)
    for skipped in ("__pycache__", ".git", "lib/__pycache__"):
        (source / skipped).mkdir()
        (source / skipped / "junk").write_text("junk")

    first = package_directory(source)
    later = time.time() + 3600
    for path in source.rglob("*"):
        os.utime(path, (later, later))
    second = package_directory(source)

    assert first == second
    with zipfile.ZipFile(BytesIO(first)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == ["app.py", "bootstrap", "lib/util.py"]
    modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in infos}
    assert modes == {"app.py": 0o644, "bootstrap": 0o755, "lib/util.py": 0o644}


# --- functions ls -------------------------------------------------------------------------


def test_functions_ls_table_and_json(
    server: Any, lam: Any, function_name: str, cleanup: list[str]
) -> None:
    lam.create_function(
        FunctionName=function_name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": _conftest.make_zip()}, MemorySize=512, Timeout=30,
    )  # fmt: skip
    cleanup.append(function_name)

    table = run_cli(server, "functions", "ls")
    raw = run_cli(server, "functions", "ls", "--json")

    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE SIZE", "LAST MODIFIED",
    ]  # fmt: skip
    row = next(line for line in rows if line.startswith(function_name + " "))
    assert row.split()[:5] == [function_name, "python3.11", "512", "MB", "30"]
    assert raw.returncode == 0, raw.stderr
    listed = {entry["FunctionName"]: entry for entry in json.loads(raw.stdout)}
    assert listed[function_name]["MemorySize"] == 512


def test_functions_ls_reads_every_page(server: Any) -> None:
    region = "eu-central-1"  # a region of its own, so the count is exact
    regional = _conftest.make_client(server.endpoint, region_name=region)
    names = [f"page-{index:03d}" for index in range(53)]  # more than one 50-item page
    for name in names:
        regional.create_function(
            FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": _conftest.make_zip()},
        )  # fmt: skip
    try:
        raw = run_cli(server, "functions", "ls", "--json", "--region", region)
        table = run_cli(server, "functions", "ls", env=cli_env(server, AWS_REGION=region))
    finally:
        for name in names:
            regional.delete_function(FunctionName=name)

    assert raw.returncode == 0, raw.stderr
    assert sorted(entry["FunctionName"] for entry in json.loads(raw.stdout)) == names
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.splitlines()) == 1 + len(names)


def test_functions_ls_empty_region(server: Any) -> None:
    result = run_cli(server, "functions", "ls", "--region", "ap-south-2")

    assert result.returncode == 0
    assert result.stdout == ""
    assert "No functions in ap-south-2" in result.stderr


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_the_function(server: Any, lam: Any, function_name: str) -> None:
    lam.create_function(
        FunctionName=function_name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": _conftest.make_zip()},
    )  # fmt: skip

    result = run_cli(server, "delete", function_name)

    assert result.returncode == 0, result.stderr
    assert function_name in result.stdout
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=function_name)


def test_delete_missing_function_is_exit_1(server: Any, function_name: str) -> None:
    result = run_cli(server, "delete", function_name)

    assert_one_line_error(result, 1, "lamina: ResourceNotFoundException: Function not found")


# --- connection and usage -----------------------------------------------------------------


def test_unreachable_endpoint_is_exit_3(server: Any, tmp_path: Path) -> None:
    endpoint = closed_port_endpoint()
    source = write_function(tmp_path / "fn", HANDLER_V1)

    listing = run_cli(server, "functions", "ls", "--endpoint", endpoint)
    deploying = run_cli(
        server, "deploy", str(source), "--name", "x", "--runtime", "python3.12",
        "--handler", "app.handler", env=cli_env(server, LAMINA_ENDPOINT=endpoint),
    )  # fmt: skip

    for result in (listing, deploying):
        assert_one_line_error(result, 3, f"cannot connect to the Lamina server at {endpoint}")
        assert "lamina server" in result.stderr


def test_upload_to_unreachable_endpoint_raises_unreachable() -> None:
    target = Target(closed_port_endpoint(), "us-east-1", Credentials("test", "test"))

    with pytest.raises(Unreachable) as caught:
        signed_json_request(target, "POST", "/2015-03-31/functions", {"FunctionName": "x"})

    assert caught.value.exit_code == 3
    assert "connection refused" in caught.value.message


def test_lamina_endpoint_wins_over_aws_endpoint_url(server: Any) -> None:
    env = _conftest.server_env(server.data_dir, {"AWS_ENDPOINT_URL": server.endpoint})
    through_aws_variable = run_cli(server, "functions", "ls", env=env)
    env["LAMINA_ENDPOINT"] = closed_port_endpoint()
    overridden = run_cli(server, "functions", "ls", env=env)

    assert through_aws_variable.returncode == 0, through_aws_variable.stderr
    assert overridden.returncode == 3


def test_wrong_credentials_are_an_aws_error(server: Any) -> None:
    env = cli_env(server, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="wrong")

    result = run_cli(server, "functions", "ls", env=env)

    assert_one_line_error(result, 1, "lamina: InvalidSignatureException: ")


@pytest.mark.parametrize(
    "args",
    [
        ["functions", "ls", "--no-such-flag"],
        ["deploy", ".", "--name", "x", "--memory", "lots"],
        ["deploy", ".", "--name", "x", "--env", "NOEQUALS"],
        ["deploy", "/no/such/directory", "--name", "x"],
        ["delete"],
        ["functions", "ls", "--endpoint", "not-a-url"],
    ],
)
def test_usage_errors_are_exit_2(server: Any, args: list[str]) -> None:
    result = run_cli(server, *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
