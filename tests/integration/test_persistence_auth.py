"""Servers of our own: restart persistence, crash recovery, code integrity, keys and settings."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_support import (
    Launched,
    base_env,
    client,
    code_sha256,
    create_params,
    download,
    expect_failure,
    free_port,
    hello_zip,
    launch,
    poll,
    remove_tree,
    start_server,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

Start = Callable[..., Any]


@pytest.fixture
def own_server() -> Iterator[Start]:
    """start_server(), with every server it started stopped at teardown."""
    started: list[Any] = []

    def start(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
        live = start_server(data_dir, *args, env=env)
        started.append(live)
        return live

    yield start
    for live in started:
        stop(live)


def stop(live: Any, kill: bool = False) -> None:
    live.stop(kill=kill)


@pytest.fixture
def launched() -> Iterator[list[Launched]]:
    servers: list[Launched] = []
    yield servers
    for server in servers:
        server.stop()


# --- persistence ---------------------------------------------------------------------------------


def test_function_survives_restart(own_server: Start, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = own_server(data_dir)
    lam = client(first.endpoint)
    name = unique_name("persist")
    zip_file = hello_zip("persisted")
    lam.create_function(
        **create_params(name, zip_file, MemorySize=384, Environment={"Variables": {"KEEP": "me"}})
    )
    lam.tag_resource(
        Resource=f"arn:aws:lambda:us-east-1:000000000000:function:{name}", Tags={"t": "1"}
    )
    before = wait_active(lam, name)
    stop(first)

    second = own_server(data_dir)
    lam = client(second.endpoint)
    got = lam.get_function(FunctionName=name)
    config = got["Configuration"]
    assert config["CodeSha256"] == code_sha256(zip_file)
    assert config["CodeSha256"] == before["CodeSha256"]
    assert config["RevisionId"] == before["RevisionId"]
    assert config["State"] == "Active"
    assert config["MemorySize"] == 384
    assert config["Environment"]["Variables"] == {"KEEP": "me"}
    assert config["LastModified"] == before["LastModified"]
    assert got["Tags"] == {"t": "1"}
    status, _, body = download(got["Code"]["Location"])
    assert (status, body) == (200, zip_file)
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == [name]


def test_kill_9_right_after_create_resumes_activation(own_server: Start, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = own_server(data_dir)
    lam = client(first.endpoint)
    zips = {unique_name(f"crash{i}"): hello_zip(f"crash-{i}") for i in range(3)}
    for name, zip_file in zips.items():
        created = lam.create_function(**create_params(name, zip_file))
        assert created["State"] == "Pending"
    stop(first, kill=True)
    assert first.process.returncode == -9

    second = own_server(data_dir)
    lam = client(second.endpoint)
    for name, zip_file in zips.items():
        config = wait_active(lam, name, timeout=30)
        assert config["State"] == "Active"
        assert config["CodeSha256"] == code_sha256(zip_file)
        got = lam.get_function(FunctionName=name)
        status, _, body = download(got["Code"]["Location"])
        assert (status, body) == (200, zip_file)
        digest = hashlib.sha256(zip_file).hexdigest()
        assert (data_dir / "code" / digest / "app.py").is_file()


def test_tampered_blob_is_never_served(own_server: Start, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = own_server(data_dir)
    lam = client(first.endpoint)
    name = unique_name("tamper")
    zip_file = hello_zip("tampered")
    lam.create_function(**create_params(name, zip_file))
    wait_active(lam, name)
    stop(first)

    digest = hashlib.sha256(zip_file).hexdigest()
    blob = data_dir / "blobs" / digest[:2] / digest
    stored = bytearray(blob.read_bytes())
    stored[len(stored) // 2] ^= 0x01
    blob.write_bytes(bytes(stored))
    remove_tree(data_dir / "code" / digest)

    second = own_server(data_dir)
    lam = client(second.endpoint)
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    status, headers, body = download(location)
    assert status == 500
    assert headers.get("content-type", "").startswith("application/json")
    assert not body.startswith(b"PK")
    assert bytes(stored) not in body
    document = json.loads(body)
    assert document.get("Message") or document.get("message")

    config = poll(
        lambda: lam.get_function_configuration(FunctionName=name),
        lambda c: c.get("State") == "Failed" or c.get("LastUpdateStatus") == "Failed",
        timeout=10,
    )
    assert config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed", config
    # The damaged code never reappears in the extracted cache.
    assert not (data_dir / "code" / digest / "app.py").exists()


# --- authentication ---------------------------------------------------------------------------


def test_custom_access_keys(own_server: Start, tmp_path: Path) -> None:
    keys = "AKIDLAMINAONE:secret-number-one,AKIDLAMINATWO:secret-number-two"
    live = own_server(tmp_path / "data", env={"LAMINA_ACCESS_KEYS": keys})

    dev = client(live.endpoint)
    failed = expect_failure(lambda: dev.list_functions())
    assert failed.code == "UnrecognizedClientException"
    assert failed.status == 403

    one = client(live.endpoint, access_key="AKIDLAMINAONE", secret_key="secret-number-one")
    assert one.list_functions()["Functions"] == []
    name = unique_name("keyed")
    one.create_function(**create_params(name))
    two = client(live.endpoint, access_key="AKIDLAMINATWO", secret_key="secret-number-two")
    assert two.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name

    wrong = client(live.endpoint, access_key="AKIDLAMINAONE", secret_key="secret-number-two")
    failed = expect_failure(lambda: wrong.list_functions())
    assert failed.code == "InvalidSignatureException"
    assert failed.status == 403


def test_non_loopback_host_with_dev_keys_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Lamina listening" not in output
    assert "key" in output.lower(), output


def test_non_loopback_host_with_allow_dev_keys_starts(own_server: Start, tmp_path: Path) -> None:
    live = own_server(tmp_path / "data", "--host", "0.0.0.0", "--allow-dev-keys")
    endpoint = live.endpoint.replace("0.0.0.0", "127.0.0.1")
    lam = client(endpoint)
    assert lam.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_non_loopback_host_with_real_keys_starts(own_server: Start, tmp_path: Path) -> None:
    live = own_server(
        tmp_path / "data", "--host", "0.0.0.0", env={"LAMINA_ACCESS_KEYS": "AKIDREAL:realsecret"}
    )
    endpoint = live.endpoint.replace("0.0.0.0", "127.0.0.1")
    lam = client(endpoint, access_key="AKIDREAL", secret_key="realsecret")
    assert lam.list_functions()["Functions"] == []


def test_off_loopback_the_development_keys_beside_real_ones_are_refused(
    own_server: Start, tmp_path: Path
) -> None:
    """test/test is published in the README: beyond loopback, beside real keys, it opens
    nothing unless --allow-dev-keys says so."""
    keys = {"LAMINA_ACCESS_KEYS": "test:test,AKIDREAL:realsecret"}
    live = own_server(tmp_path / "data", "--host", "0.0.0.0", env=keys)
    endpoint = live.endpoint.replace("0.0.0.0", "127.0.0.1")
    real = client(endpoint, access_key="AKIDREAL", secret_key="realsecret")
    assert real.list_functions()["Functions"] == []
    with pytest.raises(ClientError) as refused:
        client(endpoint).list_functions()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "access keys     AKIDREAL\n" in "".join(live.output)


# --- settings from the environment ---------------------------------------------------------------


def test_port_and_data_dir_from_environment(launched: list[Launched], tmp_path: Path) -> None:
    data_dir = tmp_path / "env-data"
    port = free_port()
    server = launch([], base_env({"LAMINA_PORT": str(port), "LAMINA_DATA_DIR": str(data_dir)}))
    launched.append(server)
    assert server.endpoint == f"http://127.0.0.1:{port}", "".join(server.output)

    lam = client(server.endpoint)
    name = unique_name("envcfg")
    zip_file = hello_zip("env")
    lam.create_function(**create_params(name, zip_file))
    wait_active(lam, name)
    assert (data_dir / "state.db").is_file()
    digest = hashlib.sha256(zip_file).hexdigest()
    assert (data_dir / "blobs" / digest[:2] / digest).is_file()
    assert (data_dir / "code" / digest).is_dir()
    assert (data_dir / "keys" / "code.key").is_file()


def test_command_line_overrides_environment(launched: list[Launched], tmp_path: Path) -> None:
    flag_dir = tmp_path / "flag-data"
    env_dir = tmp_path / "env-data"
    port = free_port()
    server = launch(
        ["--port", str(port), "--data-dir", str(flag_dir)],
        base_env({"LAMINA_PORT": "1", "LAMINA_DATA_DIR": str(env_dir)}),
    )
    launched.append(server)
    assert server.endpoint == f"http://127.0.0.1:{port}", "".join(server.output)
    lam = client(server.endpoint)
    lam.create_function(**create_params(unique_name("flags")))
    assert (flag_dir / "state.db").is_file()
    assert not env_dir.exists()
