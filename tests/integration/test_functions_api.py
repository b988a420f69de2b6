"""The function control plane through boto3, against the AWS wire contract."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from lamina_support import (
    ACCOUNT,
    LAST_MODIFIED_RE,
    ROLE,
    UUID_RE,
    client,
    code_sha256,
    create_params,
    download,
    expect_failure,
    function_arn,
    hello_zip,
    unique_name,
    wait_active,
    wait_updated,
)

pytestmark = pytest.mark.integration

LIST_REGION = "eu-west-1"  # only the 300-function listing fixture uses this region
USAGE_REGION = "ap-southeast-2"  # only the account-settings test uses this region
OTHER_REGION = "us-west-2"
LIST_COUNT = 300

Create = Callable[..., dict[str, Any]]


@pytest.fixture
def regional(server: Any) -> Iterator[Callable[[str], Any]]:
    """Clients for other regions; functions they create are deleted at teardown."""
    clients: dict[str, Any] = {}

    def get(region: str) -> Any:
        if region not in clients:
            clients[region] = client(server.endpoint, region)
        return clients[region]

    yield get
    for lam in clients.values():
        for page in lam.get_paginator("list_functions").paginate():
            for item in page["Functions"]:
                if item["FunctionName"].startswith("it-"):
                    lam.delete_function(FunctionName=item["FunctionName"])


# --- create / get -------------------------------------------------------------------------------


def test_create_returns_full_configuration_then_becomes_active(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    zip_file = hello_zip("shape")
    created = create_function(function_name, Code={"ZipFile": zip_file})

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionName"] == function_name
    assert created["FunctionArn"] == (
        f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
    )
    assert created["Runtime"] == "python3.11"
    assert created["Role"] == ROLE
    assert created["Handler"] == "app.handler"
    assert created["CodeSha256"] == code_sha256(zip_file)
    assert created["CodeSize"] == len(zip_file)
    assert created["Version"] == "$LATEST"
    assert created["State"] == "Pending"
    assert created["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in created
    assert re.fullmatch(UUID_RE, created["RevisionId"])
    assert created["MemorySize"] == 128
    assert created["Timeout"] == 3
    assert created["Description"] == ""
    assert created["EphemeralStorage"] == {"Size": 512}
    assert created["Architectures"] == ["x86_64"]
    assert created["PackageType"] == "Zip"
    assert re.fullmatch(LAST_MODIFIED_RE, created["LastModified"])
    assert created["TracingConfig"] == {"Mode": "PassThrough"}
    assert created["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{function_name}"
    assert created["LoggingConfig"]["LogFormat"] == "Text"

    waiter = lambda_client.get_waiter("function_active_v2")
    waiter.wait(FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    active = lambda_client.get_function_configuration(FunctionName=function_name)
    assert active["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert active["State"] == "Active"
    assert active["LastUpdateStatus"] == "Successful"
    assert "StateReasonCode" not in active
    assert active["CodeSha256"] == created["CodeSha256"]
    # Every change of state is a new revision (recorded AWS behaviour).
    assert active["RevisionId"] != created["RevisionId"]
    assert re.fullmatch(UUID_RE, active["RevisionId"])


def test_create_with_explicit_settings_echoes_them(
    create_function: Create, function_name: str
) -> None:
    created = create_function(
        function_name,
        MemorySize=256,
        Timeout=60,
        Description="an explicit description",
        Environment={"Variables": {"GREETING": "hi", "COUNT": "3"}},
        EphemeralStorage={"Size": 2048},
        Runtime="python3.12",
    )
    assert created["MemorySize"] == 256
    assert created["Timeout"] == 60
    assert created["Description"] == "an explicit description"
    assert created["Environment"]["Variables"] == {"GREETING": "hi", "COUNT": "3"}
    assert created["EphemeralStorage"] == {"Size": 2048}
    assert created["Runtime"] == "python3.12"


def test_get_function_returns_configuration_and_downloadable_code(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    zip_file = hello_zip("download")
    create_function(function_name, Code={"ZipFile": zip_file})
    active = wait_active(lambda_client, function_name)

    got = lambda_client.get_function(FunctionName=function_name)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    config = got["Configuration"]
    assert config["FunctionArn"] == function_arn(function_name)
    assert config["CodeSha256"] == code_sha256(zip_file)
    assert config["CodeSize"] == len(zip_file)
    assert config["RevisionId"] == active["RevisionId"]
    assert config["State"] == "Active"
    assert "Tags" not in got
    assert got["Code"]["RepositoryType"] == "S3"
    location = got["Code"]["Location"]
    assert location.startswith("http://")
    # Like a presigned S3 URL, the link expires after 10 minutes.
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert abs(int(query["Expires"]) - (time.time() + 600)) < 60

    status, _, body = download(location)
    assert status == 200
    assert body == zip_file


def test_get_function_returns_tags_when_present(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name, Tags={"team": "core", "env": "test"})
    got = lambda_client.get_function(FunctionName=function_name)
    assert got["Tags"] == {"team": "core", "env": "test"}


def test_code_location_with_tampered_signature_is_404_json(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    location = lambda_client.get_function(FunctionName=function_name)["Code"]["Location"]
    parts = urllib.parse.urlsplit(location)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert "Signature" in query
    signature = query["Signature"]
    query["Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    status, headers, body = download(tampered)
    assert status == 404
    assert headers.get("content-type", "").startswith("application/json")
    assert not body.startswith(b"PK")
    document = json.loads(body)
    assert document.get("Message") or document.get("message")


def test_get_by_full_partial_and_qualified_arn(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    created = create_function(function_name)
    arn = function_arn(function_name)
    # A qualifier in the ARN is a qualifier: `...:$LATEST` is described under that ARN
    # (LocalStack's AWS-validated map_config_out qualifies the ARN whenever one is given).
    for ref, described in (
        (arn, arn),
        (f"{ACCOUNT}:function:{function_name}", arn),
        (f"{arn}:$LATEST", f"{arn}:$LATEST"),
    ):
        config = lambda_client.get_function_configuration(FunctionName=ref)
        assert config["FunctionName"] == function_name
        assert config["CodeSha256"] == created["CodeSha256"]
        assert config["FunctionArn"] == described
        got = lambda_client.get_function(FunctionName=ref)
        assert got["Configuration"]["FunctionArn"] == described


def test_arn_from_another_region_is_not_found(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    foreign = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{function_name}"
    failed = expect_failure(lambda: lambda_client.get_function(FunctionName=foreign))
    assert failed.code == "ResourceNotFoundException"
    assert failed.status == 404
    assert (
        failed.message
        == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )


def test_get_unknown_function_is_404_with_arn(lambda_client: Any) -> None:
    name = unique_name("missing")
    for call in (lambda_client.get_function, lambda_client.get_function_configuration):
        failed = expect_failure(partial(call, FunctionName=name))
        assert failed.code == "ResourceNotFoundException"
        assert failed.status == 404
        assert failed.message == f"Function not found: {function_arn(name)}"


# --- list ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed(server: Any) -> Iterator[list[str]]:
    """300 functions in a region no other test uses; deleted afterwards."""
    lam = client(server.endpoint, LIST_REGION)
    existing = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    assert existing == [], f"region {LIST_REGION} is reserved for this fixture"
    names = [f"it-list-{index:03d}-{unique_name('f')}" for index in range(LIST_COUNT)]
    zip_file = hello_zip("listing")

    def create(name: str) -> None:
        lam.create_function(**create_params(name, zip_file))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names))
    yield names
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: lam.delete_function(FunctionName=name), names))


def test_list_functions_paginator_walks_all_300(server: Any, listed: list[str]) -> None:
    lam = client(server.endpoint, LIST_REGION)
    pages = list(lam.get_paginator("list_functions").paginate())
    names = [f["FunctionName"] for page in pages for f in page["Functions"]]
    assert len(names) == LIST_COUNT
    assert set(names) == set(listed)
    assert all(len(page["Functions"]) <= 50 for page in pages)
    assert len(pages) >= LIST_COUNT // 50
    assert "NextMarker" not in pages[-1]
    assert all("NextMarker" in page for page in pages[:-1])
    item = pages[0]["Functions"][0]
    assert item["FunctionArn"] == function_arn(item["FunctionName"], LIST_REGION)
    assert item["Version"] == "$LATEST"


def test_list_functions_max_items_and_markers(server: Any, listed: list[str]) -> None:
    lam = client(server.endpoint, LIST_REGION)
    first = lam.list_functions(MaxItems=7)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(first["Functions"]) == 7
    assert first["NextMarker"]
    second = lam.list_functions(MaxItems=7, Marker=first["NextMarker"])
    assert len(second["Functions"]) == 7
    first_names = {f["FunctionName"] for f in first["Functions"]}
    second_names = {f["FunctionName"] for f in second["Functions"]}
    assert not first_names & second_names

    # At most 50 per page, whatever MaxItems says.
    capped = lam.list_functions(MaxItems=1000)
    assert len(capped["Functions"]) == 50
    assert capped["NextMarker"]
    unbounded = lam.list_functions()
    assert len(unbounded["Functions"]) == 50

    walked: list[str] = []
    marker: str | None = None
    rounds = 0
    while True:
        kwargs: dict[str, Any] = {"MaxItems": 45}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        walked.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        rounds += 1
        if not marker:
            break
        assert rounds < 20, "pagination does not terminate"
    assert len(walked) == LIST_COUNT
    assert set(walked) == set(listed)


def test_list_functions_paginator_page_size(server: Any, listed: list[str]) -> None:
    lam = client(server.endpoint, LIST_REGION)
    pages = list(lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 20}))
    assert [len(p["Functions"]) for p in pages] == [20] * (LIST_COUNT // 20)
    assert {f["FunctionName"] for p in pages for f in p["Functions"]} == set(listed)


def test_list_functions_includes_new_function(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    names = [
        f["FunctionName"]
        for page in lambda_client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    assert names.count(function_name) == 1


# --- update code ------------------------------------------------------------------------------


def test_update_function_code(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    original = hello_zip("v1")
    create_function(function_name, Code={"ZipFile": original})
    before = wait_active(lambda_client, function_name)

    replacement = hello_zip("version-two")
    updated = lambda_client.update_function_code(FunctionName=function_name, ZipFile=replacement)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["CodeSha256"] == code_sha256(replacement)
    assert updated["CodeSize"] == len(replacement)
    assert updated["RevisionId"] != before["RevisionId"]
    assert updated["State"] == "Active"
    assert updated["LastUpdateStatus"] == "InProgress"

    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    after = lambda_client.get_function(FunctionName=function_name)
    assert after["Configuration"]["LastUpdateStatus"] == "Successful"
    assert after["Configuration"]["CodeSha256"] == code_sha256(replacement)
    status, _, body = download(after["Code"]["Location"])
    assert status == 200
    assert body == replacement


def test_update_function_code_dry_run_changes_nothing(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    original = hello_zip("kept")
    create_function(function_name, Code={"ZipFile": original})
    before = wait_active(lambda_client, function_name)

    response = lambda_client.update_function_code(
        FunctionName=function_name, ZipFile=hello_zip("not-applied"), DryRun=True
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200

    after = lambda_client.get_function(FunctionName=function_name)
    assert after["Configuration"]["CodeSha256"] == code_sha256(original)
    assert after["Configuration"]["RevisionId"] == before["RevisionId"]
    status, _, body = download(after["Code"]["Location"])
    assert status == 200
    assert body == original


def test_update_function_code_with_stale_revision_is_412(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    original = hello_zip("guarded")
    created = create_function(function_name, Code={"ZipFile": original})
    current = wait_active(lambda_client, function_name)
    assert created["RevisionId"] != current["RevisionId"]

    failed = expect_failure(
        lambda: lambda_client.update_function_code(
            FunctionName=function_name, ZipFile=hello_zip("stale"), RevisionId=created["RevisionId"]
        )
    )
    assert failed.code == "PreconditionFailedException"
    assert failed.status == 412
    assert lambda_client.get_function_configuration(FunctionName=function_name)[
        "CodeSha256"
    ] == code_sha256(original)

    fresh = hello_zip("fresh")
    ok = lambda_client.update_function_code(
        FunctionName=function_name, ZipFile=fresh, RevisionId=current["RevisionId"]
    )
    assert ok["CodeSha256"] == code_sha256(fresh)


# --- update configuration ------------------------------------------------------------------------


def test_update_function_configuration(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    before = wait_active(lambda_client, function_name)
    # Layers must exist (test_layers.py covers the checks).
    layers = [
        lambda_client.publish_layer_version(
            LayerName=unique_name(prefix), Content={"ZipFile": hello_zip(prefix)}
        )["LayerVersionArn"]
        for prefix in ("shared-libs", "extras")
    ]

    updated = lambda_client.update_function_configuration(
        FunctionName=function_name,
        MemorySize=512,
        Timeout=30,
        Environment={"Variables": {"MODE": "prod", "LEVEL": "2"}},
        Description="updated description",
        Handler="app.other",
        Runtime="python3.12",
        EphemeralStorage={"Size": 1024},
        Layers=layers,
    )
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != before["RevisionId"]
    assert updated["CodeSha256"] == before["CodeSha256"]

    after = wait_updated(lambda_client, function_name)
    assert after["MemorySize"] == 512
    assert after["Timeout"] == 30
    assert after["Environment"]["Variables"] == {"MODE": "prod", "LEVEL": "2"}
    assert after["Description"] == "updated description"
    assert after["Handler"] == "app.other"
    assert after["Runtime"] == "python3.12"
    assert after["EphemeralStorage"] == {"Size": 1024}
    assert [layer["Arn"] for layer in after["Layers"]] == layers
    assert re.fullmatch(LAST_MODIFIED_RE, after["LastModified"])

    # Environment is replaced as a whole; an empty Layers list removes them; the rest stays.
    lambda_client.update_function_configuration(
        FunctionName=function_name, Environment={"Variables": {"ONLY": "this"}}, Layers=[]
    )
    again = wait_updated(lambda_client, function_name)
    assert again["Environment"]["Variables"] == {"ONLY": "this"}
    assert not again.get("Layers")
    assert again["MemorySize"] == 512
    assert again["Handler"] == "app.other"


def test_update_configuration_with_stale_revision_is_412(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    created = create_function(function_name)
    wait_active(lambda_client, function_name)
    failed = expect_failure(
        lambda: lambda_client.update_function_configuration(
            FunctionName=function_name, MemorySize=1024, RevisionId=created["RevisionId"]
        )
    )
    assert failed.code == "PreconditionFailedException"
    assert failed.status == 412
    assert lambda_client.get_function_configuration(FunctionName=function_name)["MemorySize"] == 128


# --- delete -----------------------------------------------------------------------------------


def test_delete_function_then_get_is_404(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    deleted = lambda_client.delete_function(FunctionName=function_name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204

    failed = expect_failure(lambda: lambda_client.get_function(FunctionName=function_name))
    assert failed.code == "ResourceNotFoundException"
    assert failed.status == 404
    assert failed.message == f"Function not found: {function_arn(function_name)}"

    again = expect_failure(lambda: lambda_client.delete_function(FunctionName=function_name))
    assert (again.code, again.status) == ("ResourceNotFoundException", 404)

    # The name is free again.
    recreated = create_function(function_name)
    assert recreated["FunctionName"] == function_name


def test_delete_by_arn(lambda_client: Any, create_function: Create, function_name: str) -> None:
    create_function(function_name)
    lambda_client.delete_function(FunctionName=function_arn(function_name))
    failed = expect_failure(lambda: lambda_client.get_function(FunctionName=function_name))
    assert failed.status == 404


def test_delete_unknown_function_is_404(lambda_client: Any) -> None:
    name = unique_name("never")
    failed = expect_failure(lambda: lambda_client.delete_function(FunctionName=name))
    assert failed.code == "ResourceNotFoundException"
    assert failed.status == 404
    assert failed.message == f"Function not found: {function_arn(name)}"


# --- tags ---------------------------------------------------------------------------------------


def test_tag_untag_and_list_tags(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    arn = create_function(function_name)["FunctionArn"]
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}

    tagged = lambda_client.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2"}
    lambda_client.tag_resource(Resource=arn, Tags={"b": "3", "c": "4"})
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "3", "c": "4"}
    assert lambda_client.get_function(FunctionName=function_name)["Tags"] == {
        "a": "1",
        "b": "3",
        "c": "4",
    }

    untagged = lambda_client.untag_resource(Resource=arn, TagKeys=["a", "c"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"b": "3"}
    lambda_client.untag_resource(Resource=arn, TagKeys=["b"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lambda_client.get_function(FunctionName=function_name)


def test_tags_on_qualified_arn_are_rejected(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    arn = create_function(function_name)["FunctionArn"]
    qualified = f"{arn}:$LATEST"
    message = (
        "Tags on function aliases and versions are not supported. Please specify a function ARN."
    )
    for call in (
        lambda: lambda_client.tag_resource(Resource=qualified, Tags={"a": "1"}),
        lambda: lambda_client.list_tags(Resource=qualified),
        lambda: lambda_client.untag_resource(Resource=qualified, TagKeys=["a"]),
    ):
        failed = expect_failure(call)
        assert failed.code == "InvalidParameterValueException"
        assert failed.status == 400
        assert failed.message == message
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}


def test_tags_of_unknown_function_are_404(lambda_client: Any) -> None:
    arn = function_arn(unique_name("ghost"))
    failed = expect_failure(lambda: lambda_client.list_tags(Resource=arn))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)
    failed = expect_failure(lambda: lambda_client.tag_resource(Resource=arn, Tags={"a": "b"}))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)


# --- account settings ---------------------------------------------------------------------------


def test_get_account_settings_counts_functions_and_code(
    server: Any, lambda_client: Any, regional: Callable[[str], Any]
) -> None:
    lam = regional(USAGE_REGION)
    initial = lam.get_account_settings()
    assert initial["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert initial["AccountLimit"] == {
        "TotalCodeSize": 80_530_636_800,
        "CodeSizeUnzipped": 262_144_000,
        "CodeSizeZipped": 52_428_800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert initial["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}

    small, large = hello_zip("a"), hello_zip("b" * 5000)
    first, second, third = (f"it-usage-{unique_name(str(i))}" for i in range(3))
    lam.create_function(**create_params(first, small))
    assert lam.get_account_settings()["AccountUsage"] == {
        "TotalCodeSize": len(small),
        "FunctionCount": 1,
    }
    lam.create_function(**create_params(second, large))
    # Each function's package counts, even when two functions share the same zip.
    lam.create_function(**create_params(third, small))
    assert lam.get_account_settings()["AccountUsage"] == {
        "TotalCodeSize": 2 * len(small) + len(large),
        "FunctionCount": 3,
    }

    # Other regions do not count here.
    other = client(server.endpoint, OTHER_REGION)
    other_name = f"it-usage-{unique_name('other')}"
    other.create_function(**create_params(other_name, large))
    try:
        assert lam.get_account_settings()["AccountUsage"]["FunctionCount"] == 3
    finally:
        other.delete_function(FunctionName=other_name)

    lam.update_function_code(FunctionName=third, ZipFile=large)
    assert lam.get_account_settings()["AccountUsage"] == {
        "TotalCodeSize": len(small) + 2 * len(large),
        "FunctionCount": 3,
    }
    lam.delete_function(FunctionName=first)
    lam.delete_function(FunctionName=second)
    assert lam.get_account_settings()["AccountUsage"] == {
        "TotalCodeSize": len(large),
        "FunctionCount": 1,
    }
    lam.delete_function(FunctionName=third)
    assert lam.get_account_settings()["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}
    # Layer versions count towards the code storage too (AWS: "function and layer storage").
    layer = lam.publish_layer_version(LayerName=unique_name("usage"), Content={"ZipFile": small})
    assert lam.get_account_settings()["AccountUsage"] == {
        "TotalCodeSize": len(small),
        "FunctionCount": 0,
    }
    lam.delete_layer_version(LayerName=layer["LayerArn"], VersionNumber=layer["Version"])
    assert lam.get_account_settings()["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}


# --- regions ------------------------------------------------------------------------------------


def test_regions_are_isolated(
    lambda_client: Any, create_function: Create, regional: Callable[[str], Any]
) -> None:
    name = f"it-{unique_name('twin')}"
    east_zip, west_zip = hello_zip("east"), hello_zip("west")
    east = create_function(name, Code={"ZipFile": east_zip}, MemorySize=256)
    west_client = regional(OTHER_REGION)
    west = west_client.create_function(**create_params(name, west_zip, MemorySize=512))
    assert west["ResponseMetadata"]["HTTPStatusCode"] == 201

    assert east["FunctionArn"] == function_arn(name, "us-east-1")
    assert west["FunctionArn"] == function_arn(name, OTHER_REGION)
    east_config = lambda_client.get_function_configuration(FunctionName=name)
    west_config = west_client.get_function_configuration(FunctionName=name)
    assert east_config["CodeSha256"] == code_sha256(east_zip)
    assert west_config["CodeSha256"] == code_sha256(west_zip)
    assert (east_config["MemorySize"], west_config["MemorySize"]) == (256, 512)
    west_location = west_client.get_function(FunctionName=name)["Code"]["Location"]
    assert download(west_location)[2] == west_zip

    west_names = {
        f["FunctionName"]
        for page in west_client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    }
    assert name in west_names

    west_client.delete_function(FunctionName=name)
    failed = expect_failure(lambda: west_client.get_function(FunctionName=name))
    assert failed.status == 404
    assert failed.message == f"Function not found: {function_arn(name, OTHER_REGION)}"
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == (
        code_sha256(east_zip)
    )
