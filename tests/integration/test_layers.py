"""Lambda layers end to end: every layer operation and its errors, functions that reference
layers (checks, /opt, the combined size), and layer code's safety (hostile zips, tampering,
deleted versions kept for the functions that use them)."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_support import (
    ACCOUNT,
    REGION,
    UNZIPPED_LIMIT,
    client,
    code_listing,
    code_sha256,
    create_params,
    download,
    expect_failure,
    make_zip,
    poll,
    remove_tree,
    start_server,
    unique_name,
    wait_active,
    wait_updated,
    zip_entries,
)
from test_hostile_uploads import HOSTILE_ZIPS

pytestmark = pytest.mark.integration

MIB = 1 << 20
TIMESTAMP_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"
NOT_FOUND = "The resource you requested does not exist."

# Reads files and imports modules named by the event, from wherever sys.path finds them.
READER = """
import importlib, os

def handler(event, context):
    out = {"files": {}, "values": {}}
    for path in event.get("read", []):
        out["files"][path] = open(path).read() if os.path.exists(path) else None
    for module in event.get("import", []):
        out["values"][module] = importlib.import_module(module).VALUE
    if event.get("write"):
        try:
            open(event["write"], "w").write("x")
            out["wrote"] = True
        except OSError as error:
            out["wrote"] = error.strerror
    return out
"""


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def layer_zip(files: dict[str, str | bytes]) -> bytes:
    return make_zip(files)


def publish(lam: Any, name: str, files: dict[str, str | bytes] | None = None, **kw: Any) -> Any:
    content = layer_zip(files or {"python/mod.py": f"VALUE = {name!r}\n"})
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": content}, **kw)


def invoke(lam: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, body
    return dict(body)


def reader(lam: Any, name: str, layers: list[str], **overrides: Any) -> None:
    lam.create_function(**create_params(name, make_zip({"app.py": READER}), Layers=layers))
    wait_active(lam, name)


@pytest.fixture
def lam(server: Any) -> Any:
    return client(server.endpoint)


# --- layer versions ------------------------------------------------------------------------------


def test_publish_get_by_name_and_arn_and_download(lam: Any) -> None:
    name = unique_name("layer")
    content = layer_zip({"python/mod.py": "VALUE = 1\n"})
    published = lam.publish_layer_version(
        LayerName=name,
        Description="shared code",
        Content={"ZipFile": content},
        CompatibleRuntimes=["python3.11", "python3.12"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["LayerArn"] == layer_arn(name)
    assert published["LayerVersionArn"] == layer_arn(name, 1)
    assert published["Version"] == 1
    assert published["Description"] == "shared code"
    assert re.fullmatch(TIMESTAMP_RE, published["CreatedDate"])
    assert published["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert published["CompatibleArchitectures"] == ["x86_64"]
    assert published["LicenseInfo"] == "MIT"
    assert published["Content"]["CodeSha256"] == code_sha256(content)
    assert published["Content"]["CodeSize"] == len(content)

    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    by_arn = lam.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    by_layer_arn = lam.get_layer_version(LayerName=layer_arn(name), VersionNumber=1)
    for described in (got, by_arn, by_layer_arn):
        assert described["LayerVersionArn"] == layer_arn(name, 1)
        assert described["Content"]["CodeSha256"] == code_sha256(content)
        status, headers, body = download(described["Content"]["Location"])
        assert (status, body) == (200, content)
        assert headers["content-type"] == "application/zip"

    second = publish(lam, name)
    assert second["Version"] == 2
    assert second["LayerVersionArn"] == layer_arn(name, 2)


def test_layer_link_is_not_a_function_link(lam: Any) -> None:
    name = unique_name("link")
    location = publish(lam, name)["Content"]["Location"]
    forged = location.replace("/_lamina/code/layers/", "/_lamina/code/")
    status, _, body = download(forged)
    assert status == 404
    assert not body.startswith(b"PK")


def test_get_errors(lam: Any) -> None:
    name = unique_name("missing")
    failed = expect_failure(lambda: lam.get_layer_version(LayerName=name, VersionNumber=1))
    assert (failed.code, failed.status, failed.message) == (
        "ResourceNotFoundException",
        404,
        NOT_FOUND,
    )
    publish(lam, name)
    failed = expect_failure(lambda: lam.get_layer_version(LayerName=name, VersionNumber=2))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)
    failed = expect_failure(lambda: lam.get_layer_version(LayerName=name, VersionNumber=0))
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message == "Layer Version Cannot be less than 1"
    failed = expect_failure(lambda: lam.get_layer_version_by_arn(Arn=layer_arn(name, 9)))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)
    loose = client(lam.meta.endpoint_url, validate=False)
    failed = expect_failure(lambda: loose.get_layer_version_by_arn(Arn=layer_arn(name)))
    assert (failed.code, failed.status) == ("ValidationException", 400)


def test_list_layer_versions_filters_and_pages(lam: Any) -> None:
    name = unique_name("versions")
    for runtimes in (["python3.11"], ["python3.12"], ["python3.11", "nodejs20.x"]):
        publish(lam, name, CompatibleRuntimes=runtimes, CompatibleArchitectures=["x86_64"])
    listed = lam.list_layer_versions(LayerName=name)
    assert [v["Version"] for v in listed["LayerVersions"]] == [3, 2, 1]
    assert "NextMarker" not in listed
    first = lam.list_layer_versions(LayerName=name, MaxItems=2)
    assert [v["Version"] for v in first["LayerVersions"]] == [3, 2]
    rest = lam.list_layer_versions(LayerName=name, MaxItems=2, Marker=first["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1]
    assert "NextMarker" not in rest
    item = rest["LayerVersions"][0]
    assert item["LayerVersionArn"] == layer_arn(name, 1)
    assert re.fullmatch(TIMESTAMP_RE, item["CreatedDate"])
    assert "Content" not in item

    py311 = lam.list_layer_versions(LayerName=name, CompatibleRuntime="python3.11")
    assert [v["Version"] for v in py311["LayerVersions"]] == [3, 1]
    arm = lam.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")
    assert arm["LayerVersions"] == []
    assert lam.list_layer_versions(LayerName=unique_name("none"))["LayerVersions"] == []


def test_list_layers_latest_matching_version_and_pages(lam: Any) -> None:
    prefix = unique_name("ll")
    names = [f"{prefix}-{i}" for i in range(3)]
    for layer in names:
        publish(lam, layer, CompatibleRuntimes=["python3.11"])
        publish(lam, layer, CompatibleRuntimes=["python3.12"])

    def everything(**filters: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        marker = None
        while True:
            page = lam.list_layers(MaxItems=2, **filters, **({"Marker": marker} if marker else {}))
            assert len(page["Layers"]) <= 2
            found += page["Layers"]
            marker = page.get("NextMarker")
            if not marker:
                return found

    ours = [layer for layer in everything() if layer["LayerName"].startswith(prefix)]
    assert [layer["LayerName"] for layer in ours] == names
    assert ours[0]["LayerArn"] == layer_arn(names[0])
    assert ours[0]["LatestMatchingVersion"]["Version"] == 2
    assert ours[0]["LatestMatchingVersion"]["LayerVersionArn"] == layer_arn(names[0], 2)
    py311 = everything(CompatibleRuntime="python3.11")
    ours = [layer for layer in py311 if layer["LayerName"].startswith(prefix)]
    assert [layer["LatestMatchingVersion"]["Version"] for layer in ours] == [1, 1, 1]


def test_delete_layer_version(lam: Any, server: Any) -> None:
    name = unique_name("delete")
    content = layer_zip({"python/gone.py": f"VALUE = {name!r}\n"})
    lam.publish_layer_version(LayerName=name, Content={"ZipFile": content})
    publish(lam, name)
    digest = hashlib.sha256(content).hexdigest()
    assert f"code/{digest}" in code_listing(server.data_dir)

    answer = lam.delete_layer_version(LayerName=name, VersionNumber=1)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    failed = expect_failure(lambda: lam.get_layer_version(LayerName=name, VersionNumber=1))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)
    listed = lam.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [v["Version"] for v in listed] == [2]
    # Unused by any function: its code is gone too.
    assert f"code/{digest}" not in code_listing(server.data_dir)
    # Deleting again (or a version that never existed) answers 204 as well.
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    lam.delete_layer_version(LayerName=name, VersionNumber=99)
    # Numbers are never reused.
    assert publish(lam, name)["Version"] == 3
    failed = expect_failure(lambda: lam.delete_layer_version(LayerName=name, VersionNumber=0))
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)


# --- permissions ---------------------------------------------------------------------------


def test_layer_version_permissions(lam: Any) -> None:
    name = unique_name("perm")
    publish(lam, name)
    arn = layer_arn(name, 1)
    none = expect_failure(lambda: lam.get_layer_version_policy(LayerName=name, VersionNumber=1))
    assert (none.code, none.status) == ("ResourceNotFoundException", 404)
    assert none.message == "No policy is associated with the given resource."

    added = lam.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="xaccount",
        Action="lambda:GetLayerVersion",
        Principal="210987654321",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": arn,
    }
    first_revision = added["RevisionId"]
    org = lam.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
        RevisionId=first_revision,
    )
    assert json.loads(org["Statement"])["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}
    }
    assert org["RevisionId"] != first_revision

    policy = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert policy["RevisionId"] == org["RevisionId"]
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17"
    assert [s["Sid"] for s in document["Statement"]] == ["xaccount", "org"]

    duplicate = expect_failure(
        lambda: lam.add_layer_version_permission(
            LayerName=name,
            VersionNumber=1,
            StatementId="org",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    )
    assert (duplicate.code, duplicate.status) == ("ResourceConflictException", 409)
    assert "(org) provided already exists" in duplicate.message
    stale = expect_failure(
        lambda: lam.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="org", RevisionId=first_revision
        )
    )
    assert (stale.code, stale.status) == ("PreconditionFailedException", 412)
    assert "GetLayerPolicy" in stale.message

    removed = lam.remove_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="org", RevisionId=org["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    gone = expect_failure(
        lambda: lam.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="org"
        )
    )
    assert (gone.code, gone.status) == ("ResourceNotFoundException", 404)
    assert gone.message == "Statement org is not found in resource policy."
    left = json.loads(lam.get_layer_version_policy(LayerName=name, VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in left["Statement"]] == ["xaccount"]


def test_permission_errors(lam: Any) -> None:
    name = unique_name("permerr")
    missing = expect_failure(
        lambda: lam.add_layer_version_permission(
            LayerName=name,
            VersionNumber=1,
            StatementId="s",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    )
    assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
    assert missing.message == f"Layer version {layer_arn(name, 1)} does not exist."
    for call in (
        lambda: lam.get_layer_version_policy(LayerName=name, VersionNumber=1),
        lambda: lam.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="s"
        ),
    ):
        failed = expect_failure(call)
        assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)
    publish(lam, name)
    loose = client(lam.meta.endpoint_url, validate=False)
    wrong_action = expect_failure(
        lambda: loose.add_layer_version_permission(
            LayerName=name,
            VersionNumber=1,
            StatementId="s",
            Action="lambda:InvokeFunction",
            Principal="*",
        )
    )
    assert (wrong_action.code, wrong_action.status) == ("ValidationException", 400)


# --- functions using layers ----------------------------------------------------------------------


def test_function_imports_a_module_from_opt_python(lam: Any) -> None:
    layer = unique_name("pylib")
    content = layer_zip(
        {
            "python/laminalib.py": "VALUE = 'from /opt/python'\n",
            "python/lib/python3.11/site-packages/sitelib.py": "VALUE = 'from site-packages'\n",
        }
    )
    published = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": content})
    name = unique_name("uses-layer")
    reader(lam, name, [published["LayerVersionArn"]])
    body = invoke(lam, name, {"import": ["laminalib", "sitelib"]})
    assert body["values"] == {
        "laminalib": "from /opt/python",
        "sitelib": "from site-packages",
    }
    config = lam.get_function(FunctionName=name)["Configuration"]
    assert config["Layers"] == [{"Arn": published["LayerVersionArn"], "CodeSize": len(content)}]
    listed = lam.get_function_configuration(FunctionName=name)
    assert listed["Layers"] == config["Layers"]


def test_later_layer_overrides_files_of_earlier_ones(lam: Any) -> None:
    first = lam.publish_layer_version(
        LayerName=unique_name("base"),
        Content={"ZipFile": layer_zip({"shared.txt": "one", "only-first.txt": "first"})},
    )["LayerVersionArn"]
    second = lam.publish_layer_version(
        LayerName=unique_name("over"),
        Content={"ZipFile": layer_zip({"shared.txt": "two", "only-second.txt": "second"})},
    )["LayerVersionArn"]
    name = unique_name("stacked")
    reader(lam, name, [first, second])
    paths = ["/opt/shared.txt", "/opt/only-first.txt", "/opt/only-second.txt"]
    body = invoke(lam, name, {"read": paths, "write": "/opt/new.txt"})
    assert body["files"] == {
        "/opt/shared.txt": "two",
        "/opt/only-first.txt": "first",
        "/opt/only-second.txt": "second",
    }
    assert body["wrote"] is not True  # /opt is read-only

    # The order is the function's: reversed, the first layer wins.
    lam.update_function_configuration(FunctionName=name, Layers=[second, first])
    wait_updated(lam, name)
    assert invoke(lam, name, {"read": ["/opt/shared.txt"]})["files"] == {"/opt/shared.txt": "one"}
    lam.update_function_configuration(FunctionName=name, Layers=[])
    wait_updated(lam, name)
    assert invoke(lam, name, {"read": ["/opt/shared.txt"]})["files"] == {"/opt/shared.txt": None}


def test_layer_reference_errors(lam: Any) -> None:
    arns = [publish(lam, unique_name("five"))["LayerVersionArn"] for _ in range(6)]
    name = unique_name("too-many")

    def create(layers: list[str]) -> Any:
        return expect_failure(lambda: lam.create_function(**create_params(name, Layers=layers)))

    failed = create(arns)
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message == "Cannot reference more than 5 layers."
    missing = layer_arn(unique_name("nope"), 1)
    failed = create([arns[0], missing])
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message == f"Layer version {missing} does not exist."
    elsewhere = arns[0].replace(REGION, "eu-west-1")
    failed = create([elsewhere])
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message == (
        "Layers are not in the same region as the function. "
        f"Layers are expected to be in region {REGION}."
    )
    foreign = arns[0].replace(ACCOUNT, "123456789012")
    failed = create([foreign])
    assert (failed.code, failed.status) == ("AccessDeniedException", 403)
    assert "lambda:GetLayerVersion" in failed.message
    same_layer = arns[0].rsplit(":", 1)[0] + ":2"
    lam.publish_layer_version(
        LayerName=arns[0].rsplit(":", 2)[1], Content={"ZipFile": layer_zip({"a": "b"})}
    )
    failed = create([arns[0], same_layer])
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message.startswith(
        "Two different versions of the same layer are not allowed to be referenced"
    )
    assert expect_failure(lambda: lam.get_function(FunctionName=name)).status == 404

    lam.create_function(**create_params(name, Layers=arns[:5]))
    wait_active(lam, name)
    failed = expect_failure(
        lambda: lam.update_function_configuration(FunctionName=name, Layers=[missing])
    )
    assert failed.message == f"Layer version {missing} does not exist."
    assert len(lam.get_function(FunctionName=name)["Configuration"]["Layers"]) == 5


def test_function_plus_layers_over_250mb_is_refused(lam: Any) -> None:
    """Real sizes: two layers of 130 MiB of zeros each, in 1 MiB entries (under the per-entry
    ratio cap, so each archive passes the hostile-zip checks on its own)."""
    entries = 130
    big: list[tuple[zipfile.ZipInfo | str, bytes]] = [
        (f"data/part{i:03d}.bin", bytes(MIB)) for i in range(entries)
    ]
    arns = [
        lam.publish_layer_version(
            LayerName=unique_name("big"),
            Content={"ZipFile": zip_entries([*big, (f"tag{n}.txt", b"x")], level=9)},
        )["LayerVersionArn"]
        for n in range(2)
    ]
    code = make_zip({"app.py": READER})
    expected = 2 * (entries * MIB + 1) + len(READER)
    assert expected > UNZIPPED_LIMIT
    name = unique_name("huge")
    failed = expect_failure(lambda: lam.create_function(**create_params(name, code, Layers=arns)))
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        f"bytes. The actual size is {expected} bytes."
    )
    # One of them fits; adding the second by configuration is refused the same way.
    lam.create_function(**create_params(name, code, Layers=arns[:1]))
    wait_active(lam, name)
    failed = expect_failure(
        lambda: lam.update_function_configuration(FunctionName=name, Layers=arns)
    )
    assert failed.message.endswith(f"The actual size is {expected} bytes.")
    for arn in arns:
        lam.delete_layer_version(LayerName=arn.rsplit(":", 2)[1], VersionNumber=1)
    lam.delete_function(FunctionName=name)


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_layer_zip_is_rejected(lam: Any, server: Any, case: str) -> None:
    before = code_listing(server.data_dir)
    name = unique_name(case[:20])
    failed = expect_failure(
        lambda: lam.publish_layer_version(LayerName=name, Content={"ZipFile": HOSTILE_ZIPS[case]()})
    )
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert code_listing(server.data_dir) - before == set()


def test_deleted_layer_version_keeps_functions_working(lam: Any, server: Any) -> None:
    layer = unique_name("kept")
    content = layer_zip({"python/keptlib.py": f"VALUE = {layer!r}\n"})
    arn = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": content})[
        "LayerVersionArn"
    ]
    digest = hashlib.sha256(content).hexdigest()
    name = unique_name("keeps")
    reader(lam, name, [arn])
    assert invoke(lam, name, {"import": ["keptlib"]})["values"] == {"keptlib": layer}

    lam.delete_layer_version(LayerName=layer, VersionNumber=1)
    # A new environment (new configuration) still gets the deleted version's code.
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"AB": "1"}})
    wait_updated(lam, name)
    assert invoke(lam, name, {"import": ["keptlib"]})["values"] == {"keptlib": layer}
    assert lam.get_function(FunctionName=name)["Configuration"]["Layers"] == [
        {"Arn": arn, "CodeSize": len(content)}
    ]
    # ... but nobody can add it any more.
    failed = expect_failure(
        lambda: lam.create_function(**create_params(unique_name("late"), Layers=[arn]))
    )
    assert failed.message == f"Layer version {arn} does not exist."
    assert f"code/{digest}" in code_listing(server.data_dir)
    # Once no function names it, its code goes.
    lam.delete_function(FunctionName=name)
    assert f"code/{digest}" not in code_listing(server.data_dir)


# --- tampering (own server: the blob is damaged while it is down) ---------------------------


@pytest.fixture
def own_server() -> Iterator[Callable[[Path], Any]]:
    started: list[Any] = []

    def start(data_dir: Path) -> Any:
        live = start_server(data_dir)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def test_tampered_layer_blob_is_refused(own_server: Callable[[Path], Any], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = own_server(data_dir)
    lam = client(first.endpoint)
    layer = unique_name("tamper")
    content = layer_zip({"python/tamperlib.py": "VALUE = 'intact'\n"})
    arn = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": content})[
        "LayerVersionArn"
    ]
    name = unique_name("victim")
    reader(lam, name, [arn])
    assert invoke(lam, name, {"import": ["tamperlib"]})["values"] == {"tamperlib": "intact"}
    first.stop()

    digest = hashlib.sha256(content).hexdigest()
    blob = data_dir / "blobs" / digest[:2] / digest
    stored = bytearray(blob.read_bytes())
    stored[len(stored) // 2] ^= 0x01
    blob.write_bytes(bytes(stored))
    remove_tree(data_dir / "code" / digest)

    second = own_server(data_dir)
    lam = client(second.endpoint)
    location = lam.get_layer_version(LayerName=layer, VersionNumber=1)["Content"]["Location"]
    status, _, body = download(location)
    assert status == 500
    assert not body.startswith(b"PK")
    failed = expect_failure(
        lambda: lam.invoke(FunctionName=name, Payload=b'{"import": ["tamperlib"]}')
    )
    assert (failed.code, failed.status) == ("ServiceException", 500)
    assert not (data_dir / "code" / digest).exists()
    poll(lambda: None, lambda _: True)  # (the server stays up and serves)
    assert lam.get_layer_version(LayerName=layer, VersionNumber=1)["Version"] == 1
