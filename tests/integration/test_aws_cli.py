"""The real AWS CLI (`aws lambda ...`) against the server."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lamina_support import (
    AWS_CLI,
    ROLE,
    aws_cli_env,
    client,
    code_sha256,
    create_params,
    download,
    expect_failure,
    function_arn,
    hello_zip,
    make_zip,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

AWS = AWS_CLI
CLI_LIST_REGION = "ca-central-1"  # only the CLI listing test uses this region
CLI_LIST_COUNT = 57

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def aws(server: Any, tmp_path: Path) -> Cli:
    """Run `aws <args>`; the CLI sees only the endpoint, the dev keys and a scratch HOME."""
    env = aws_cli_env(server.endpoint, tmp_path / "home")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [AWS, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert done.returncode == 0, (args, done.returncode, done.stderr)
        return done

    return run


def service_error_exit_code(aws: Cli) -> int:
    """AWS CLI v2 exits 254 on a service error; v1 (what pip installs) exits 255."""
    done = aws("--version")
    version = done.stdout + done.stderr
    return 254 if version.startswith("aws-cli/2.") else 255


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


@pytest.fixture
def cleanup(lambda_client: Any) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


def test_cli_function_lifecycle(
    aws: Cli, tmp_path: Path, lambda_client: Any, cleanup: list[str]
) -> None:
    name = unique_name("cli")
    cleanup.append(name)
    hello = hello_zip("cli")
    (tmp_path / "hello.zip").write_bytes(hello)

    created = as_json(
        aws(
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.11",
            "--role",
            ROLE,
            "--handler",
            "app.handler",
            "--zip-file",
            "fileb://hello.zip",
            "--output",
            "json",
        )
    )
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == function_arn(name)
    assert created["CodeSha256"] == code_sha256(hello)
    assert created["CodeSize"] == len(hello)
    assert created["State"] == "Pending"
    wait_active(lambda_client, name)

    got = as_json(aws("lambda", "get-function", "--function-name", name, "--output", "json"))
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["CodeSha256"] == code_sha256(hello)
    status, _, body = download(got["Code"]["Location"])
    assert (status, body) == (200, hello)

    config = as_json(
        aws("lambda", "get-function-configuration", "--function-name", name, "--output", "json")
    )
    assert config["FunctionName"] == name
    assert config["LastUpdateStatus"] == "Successful"
    assert config["MemorySize"] == 128

    second = hello_zip("cli-second")
    (tmp_path / "second.zip").write_bytes(second)
    updated = as_json(
        aws(
            "lambda",
            "update-function-code",
            "--function-name",
            name,
            "--zip-file",
            "fileb://second.zip",
            "--output",
            "json",
        )
    )
    assert updated["CodeSha256"] == code_sha256(second)
    assert updated["RevisionId"] != config["RevisionId"]
    aws("lambda", "wait", "function-updated-v2", "--function-name", name)

    reconfigured = as_json(
        aws(
            "lambda",
            "update-function-configuration",
            "--function-name",
            name,
            "--memory-size",
            "256",
            "--timeout",
            "42",
            "--description",
            "from the cli",
            "--environment",
            "Variables={STAGE=cli,COLOR=blue}",
            "--output",
            "json",
        )
    )
    assert reconfigured["MemorySize"] == 256
    assert reconfigured["Timeout"] == 42
    assert reconfigured["Description"] == "from the cli"
    assert reconfigured["Environment"]["Variables"] == {"STAGE": "cli", "COLOR": "blue"}
    aws("lambda", "wait", "function-updated-v2", "--function-name", name)
    after = lambda_client.get_function_configuration(FunctionName=name)
    assert after["MemorySize"] == 256
    assert after["CodeSha256"] == code_sha256(second)

    deleted = aws("lambda", "delete-function", "--function-name", name, "--output", "json")
    # The current model binds the HTTP status to an output member: AWS answers 204.
    assert as_json(deleted) == {"StatusCode": 204}
    missing = expect_failure(lambda: lambda_client.get_function(FunctionName=name))
    assert missing.status == 404


def test_cli_tags(aws: Cli, create_function: Callable[..., dict[str, Any]]) -> None:
    arn = create_function()["FunctionArn"]
    aws("lambda", "tag-resource", "--resource", arn, "--tags", "team=core,env=dev")
    listed = as_json(aws("lambda", "list-tags", "--resource", arn, "--output", "json"))
    assert listed["Tags"] == {"team": "core", "env": "dev"}
    aws("lambda", "untag-resource", "--resource", arn, "--tag-keys", "team")
    listed = as_json(aws("lambda", "list-tags", "--resource", arn, "--output", "json"))
    assert listed["Tags"] == {"env": "dev"}


def test_cli_get_account_settings(aws: Cli) -> None:
    settings = as_json(aws("lambda", "get-account-settings", "--output", "json"))
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52_428_800
    assert settings["AccountLimit"]["CodeSizeUnzipped"] == 262_144_000
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountUsage"]["FunctionCount"] >= 0
    assert settings["AccountUsage"]["TotalCodeSize"] >= 0


def test_cli_list_functions_paginates(server: Any, aws: Cli) -> None:
    lam = client(server.endpoint, CLI_LIST_REGION)
    names = [f"it-cli-{index:02d}-{unique_name('f')}" for index in range(CLI_LIST_COUNT)]
    zip_file = hello_zip("cli-list")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: lam.create_function(**create_params(n, zip_file)), names))
    try:
        listed = as_json(
            aws("lambda", "list-functions", "--region", CLI_LIST_REGION, "--output", "json")
        )
        found = [f["FunctionName"] for f in listed["Functions"]]
        assert sorted(found) == sorted(names)
        assert all(
            f["FunctionArn"] == function_arn(f["FunctionName"], CLI_LIST_REGION)
            for f in listed["Functions"]
        )
        assert "NextMarker" not in listed

        # With a page size the CLI still walks every page.
        paged = as_json(
            aws(
                "lambda",
                "list-functions",
                "--region",
                CLI_LIST_REGION,
                "--page-size",
                "10",
                "--output",
                "json",
            )
        )
        assert sorted(f["FunctionName"] for f in paged["Functions"]) == sorted(names)

        # --max-items stops early and hands back a token.
        first = as_json(
            aws(
                "lambda",
                "list-functions",
                "--region",
                CLI_LIST_REGION,
                "--max-items",
                "5",
                "--output",
                "json",
            )
        )
        assert len(first["Functions"]) == 5
        assert first["NextToken"]
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: lam.delete_function(FunctionName=n), names))


def test_cli_missing_function_is_an_error(aws: Cli) -> None:
    name = unique_name("nowhere")
    done = aws("lambda", "get-function", "--function-name", name, check=False)
    assert done.returncode == service_error_exit_code(aws)
    assert "ResourceNotFoundException" in done.stderr
    assert f"Function not found: {function_arn(name)}" in done.stderr
    assert done.stdout == ""


def test_cli_hostile_zip_is_an_error(aws: Cli, tmp_path: Path) -> None:
    # The CLI itself refuses files that are not zips, so send a zip escaping its root.
    (tmp_path / "broken.zip").write_bytes(make_zip({"../escape.py": "x = 1\n"}))
    done = aws(
        "lambda",
        "create-function",
        "--function-name",
        unique_name("broken"),
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        "fileb://broken.zip",
        check=False,
    )
    assert done.returncode == service_error_exit_code(aws)
    assert "InvalidParameterValueException" in done.stderr
