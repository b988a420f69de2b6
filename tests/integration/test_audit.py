"""The audit trail against a live server: control-plane calls made with boto3 are recorded with
every field and without secrets or code, failures carry their error code, Invoke is not
recorded; `lamina audit` lists and filters; `lamina audit verify` passes, then catches an edited,
a deleted and a cut-off record; records survive kill -9."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_support import (
    ACCOUNT,
    client,
    create_params,
    expect_failure,
    lamina_cli,
    make_zip,
    poll,
    raw_request,
    start_server,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("audit"))
    yield server
    server.stop()


def trail(data_dir: Path) -> Path:
    return data_dir / "audit" / "audit.log"


def records(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in trail(data_dir).read_bytes().splitlines()]


lamina = lamina_cli


def request_id(answer: dict[str, Any]) -> str:
    value: str = answer["ResponseMetadata"]["RequestId"]
    return value


def check_create(create: dict[str, Any], name: str, code: bytes) -> None:
    assert create["operation"] == "CreateFunction"
    assert (create["status"], create["error"]) == (201, None)
    assert create["access_key"] == "test"
    assert create["authenticated"] is True
    assert create["source_ip"] == "127.0.0.1"
    assert create["region"] == REGION
    assert create["resource"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert create["time"].endswith("Z")
    assert len(create["time"]) == 24
    assert "Boto3" in create["user_agent"] or "botocore" in create["user_agent"]
    parameters = create["parameters"]
    assert parameters["Code"]["ZipFile"] == {
        "Bytes": len(code),
        "Sha256": hashlib.sha256(code).hexdigest(),
    }
    assert parameters["Environment"]["Variables"] == {"DB_PASSWORD": "***"}
    assert (parameters["Runtime"], parameters["Handler"]) == ("python3.11", "app.handler")


def test_control_plane_calls_are_recorded_without_secrets(live: Any) -> None:
    lam = client(live.endpoint)
    name = unique_name("audited")
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    marker = f"code-marker-{uuid.uuid4().hex}"
    code = make_zip({"app.py": f"def handler(e, c):\n    return {marker!r}\n"})
    created = lam.create_function(
        **create_params(name, code, Environment={"Variables": {"DB_PASSWORD": secret}})
    )
    wait_active(lam, name)
    updated = lam.update_function_configuration(
        FunctionName=name, Timeout=7, Environment={"Variables": {"TOKEN": secret}}
    )
    wait_active(lam, name)
    invoked = lam.invoke(FunctionName=name, Payload=json.dumps({"secret": secret}).encode())
    assert invoked["StatusCode"] == 200
    missing = expect_failure(lambda: lam.get_function(FunctionName=f"{name}-missing"))
    assert missing.code == "ResourceNotFoundException"
    forged = client(live.endpoint, access_key="test", secret_key="wrong")
    refused = expect_failure(lambda: forged.delete_function(FunctionName=name))
    assert refused.code == "InvalidSignatureException"

    raw = trail(live.data_dir).read_bytes()
    assert secret.encode() not in raw
    assert marker.encode() not in raw
    assert base64.b64encode(code) not in raw
    assert code[:64] not in raw
    assert stat.S_IMODE(os.stat(trail(live.data_dir)).st_mode) == 0o600

    mine = [r for r in records(live.data_dir) if r.get("function") in (name, f"{name}-missing")]
    by_id = {r["request_id"]: r for r in mine}
    assert request_id(invoked) not in by_id  # the data plane is not audited
    assert not [r for r in mine if r["operation"] == "Invoke"]

    check_create(by_id[request_id(created)], name, code)

    update = by_id[request_id(updated)]
    assert update["operation"] == "UpdateFunctionConfiguration"
    assert update["parameters"]["Timeout"] == 7
    assert update["parameters"]["Environment"]["Variables"] == {"TOKEN": "***"}

    (failed,) = [r for r in mine if r["operation"] == "GetFunction"]
    assert (failed["status"], failed["error"]) == (404, "ResourceNotFoundException")
    assert failed["function"] == f"{name}-missing"

    (forgery,) = [r for r in mine if r["operation"] == "DeleteFunction"]
    assert forgery["authenticated"] is False
    assert (forgery["status"], forgery["error"]) == (403, "InvalidSignatureException")
    assert forgery["access_key"] == "test"
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def test_cli_lists_and_filters(live: Any) -> None:
    lam = client(live.endpoint)
    name, other = unique_name("listed"), unique_name("other")
    for each in (name, other):
        lam.create_function(**create_params(each))
        wait_active(lam, each)
    lam.tag_resource(
        Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", Tags={"team": "a"}
    )
    lam.delete_function(FunctionName=name)

    listed = lamina(live.endpoint, "audit", "--function", name, "--json")
    assert listed.returncode == 0, listed.stderr
    found = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["operation"] for r in found if not r["operation"].startswith("Get")] == [
        "CreateFunction",
        "TagResource",
        "DeleteFunction",
    ]
    assert {r["function"] for r in found} == {name}
    assert [r["seq"] for r in found] == sorted(r["seq"] for r in found)

    table = lamina(live.endpoint, "audit", "--function", name, "--since", "10m")
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[0].split("\t")
    assert first[1:5] == ["201", "-", "CreateFunction", name]

    later = lamina(live.endpoint, "audit", "--function", name, "--since", "2999-01-01T00:00:00Z")
    assert (later.returncode, later.stdout) == (0, "")
    offline = lamina(None, "audit", "--function", other, "--json", "--data-dir", str(live.data_dir))
    assert offline.returncode == 0, offline.stderr
    assert next(json.loads(line)["operation"] for line in offline.stdout.splitlines()) == (
        "CreateFunction"
    )
    bad = lamina(live.endpoint, "audit", "--since", "yesterday")
    assert bad.returncode == 1
    assert "InvalidParameterValueException" in bad.stderr

    verified = lamina(live.endpoint, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: ")


def edit_and_verify(data_dir: Path, change: Any) -> subprocess.CompletedProcess[str]:
    path = trail(data_dir)
    original = path.read_bytes()
    path.write_bytes(change(original.splitlines(keepends=True)))
    try:
        return lamina(None, "audit", "verify", "--data-dir", str(data_dir))
    finally:
        path.write_bytes(original)


def check_tampering(data: Path) -> None:
    def edited(lines: list[bytes]) -> bytes:
        lines[1] = lines[1].replace(b'"status":201', b'"status":200')
        return b"".join(lines)

    broken = edit_and_verify(data, edited)
    assert broken.returncode == 1
    assert "line 2 (record 2) was edited" in broken.stderr

    def deleted(lines: list[bytes]) -> bytes:
        del lines[1]
        return b"".join(lines)

    broken = edit_and_verify(data, deleted)
    assert broken.returncode == 1
    assert "records 2..2 are missing" in broken.stderr

    broken = edit_and_verify(data, lambda lines: b"".join(lines[:-1]))
    assert broken.returncode == 1
    assert "records were removed from the end" in broken.stderr

    broken = edit_and_verify(data, lambda lines: b"".join(lines)[:-30])
    assert broken.returncode == 1
    assert "incomplete record" in broken.stderr


def test_verify_detects_tampering_and_records_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        lam = client(server.endpoint)
        names = [unique_name("chain") for _ in range(3)]
        for name in names:
            lam.create_function(**create_params(name))
        last = lam.update_function_configuration(FunctionName=names[0], Timeout=9)
        server.stop(kill=True)  # SIGKILL right after the answer: the record is on disk
    finally:
        server.stop(kill=True)
    found = records(data)
    assert found[-1]["request_id"] == request_id(last)
    assert [r["operation"] for r in found if r["operation"] == "CreateFunction"] == [
        "CreateFunction"
    ] * 3

    offline = lamina(None, "audit", "verify", "--data-dir", str(data))
    assert offline.returncode == 0, offline.stderr
    count = len(found)
    assert f"ok: {count} records" in offline.stdout

    check_tampering(data)

    # A restart continues the chain; the endpoint verifies it too.
    server = start_server(data)
    try:
        lam = client(server.endpoint)
        lam.delete_function(FunctionName=names[1])
        verified = lamina(server.endpoint, "audit", "verify", "--json")
        assert verified.returncode == 0, verified.stderr
        result = json.loads(verified.stdout)
        assert result["Ok"] is True
        assert result["Records"] == count + 1
        # Tampering while it runs is caught through the endpoint as well.
        original = trail(data).read_bytes()
        lines = original.splitlines(keepends=True)
        lines[0] = lines[0].replace(b'"CreateFunction"', b'"GetFunction"')
        trail(data).write_bytes(b"".join(lines))
        caught = lamina(server.endpoint, "audit", "verify")
        assert caught.returncode == 1
        assert "line 1 (record 1) was edited" in caught.stderr
    finally:
        server.stop()


def test_logs_api_and_built_in_queue_calls_are_recorded(live: Any) -> None:
    """The CloudWatch Logs API and Lamina's queue API are control plane too: their calls are
    recorded with the log group's ARN or the queue's path."""
    lam, logs = client(live.endpoint), client(live.endpoint, service="logs")
    name = unique_name("audited")
    lam.create_function(**create_params(name))
    wait_active(lam, name)
    lam.invoke(FunctionName=name, Payload=b"{}")
    group = f"/aws/lambda/{name}"
    answer = logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    queue = unique_name("q")
    created = raw_request(
        live.endpoint, "POST", "/lamina/queues", body=f'{{"Name": "{queue}"}}'.encode()
    )
    assert created.status == 201
    deleted = raw_request(live.endpoint, "DELETE", f"/lamina/queues/{queue}")
    assert deleted.status == 204

    def wanted() -> list[dict[str, Any]]:
        return [
            r
            for r in records(live.data_dir)
            if r["request_id"] in (request_id(answer), created.headers["x-amzn-RequestId"],
                                   deleted.headers["x-amzn-RequestId"])
        ]  # fmt: skip

    found = poll(wanted, lambda got: len(got) == 3)
    by_operation = {r["operation"]: r for r in found}
    retention = by_operation["logs:PutRetentionPolicy"]
    assert retention["resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    assert retention["parameters"] == {"logGroupName": group, "retentionInDays": 7}
    assert by_operation["lamina:CreateQueue"]["parameters"]["Name"] == queue
    assert by_operation["lamina:DeleteQueue"]["status"] == 204
