"""Published versions end to end (control-api.md §4.4, §4.8, §4.9, §4.12): PublishVersion,
ListVersionsByFunction, qualified reads and invokes, and deleting versions (with the alias rule)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from lamina_support import (
    LAST_MODIFIED_RE,
    code_sha256,
    download,
    expect_failure,
    function_arn,
    make_zip,
    unique_name,
    wait_active,
    wait_updated,
)

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]


def tagged_zip(tag: str) -> bytes:
    return make_zip({"app.py": f"def handler(event, context):\n    return {{'tag': {tag!r}}}\n"})


@pytest.fixture
def name(lambda_client: Any, create_function: Create) -> str:
    """An Active function whose code answers tag 'one'; nothing published yet."""
    function = unique_name("ver")
    create_function(function, Code={"ZipFile": tagged_zip("one")})
    wait_active(lambda_client, function)
    return function


def new_code(lam: Any, name: str, tag: str) -> None:
    lam.update_function_code(FunctionName=name, ZipFile=tagged_zip(tag))
    wait_updated(lam, name)


def tag_of(lam: Any, name: str, **kwargs: Any) -> tuple[str, str]:
    """(X-Amz-Executed-Version, the tag the code answered)."""
    response = lam.invoke(FunctionName=name, **kwargs)
    with response["Payload"] as body:
        return response["ExecutedVersion"], json.loads(body.read())["tag"]


# --- PublishVersion -------------------------------------------------------------------------


def test_publish_snapshots_latest(lambda_client: Any, name: str) -> None:
    latest = lambda_client.get_function_configuration(FunctionName=name)
    published = lambda_client.publish_version(FunctionName=name, Description="first cut")
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["Version"] == "1"
    assert published["FunctionArn"] == f"{function_arn(name)}:1"
    assert published["Description"] == "first cut"
    assert published["State"] == "Active"
    assert published["CodeSha256"] == latest["CodeSha256"] == code_sha256(tagged_zip("one"))
    assert published["RevisionId"] != latest["RevisionId"]
    assert published["LastModified"]
    # The override describes the version only.
    assert lambda_client.get_function_configuration(FunctionName=name)["Description"] == ""


def test_publish_without_changes_returns_the_last_version(lambda_client: Any, name: str) -> None:
    first = lambda_client.publish_version(FunctionName=name)
    again = lambda_client.publish_version(FunctionName=name)
    assert (again["Version"], again["RevisionId"]) == ("1", first["RevisionId"])
    new_code(lambda_client, name, "two")
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"


def test_publishing_changes_the_revision_of_latest(lambda_client: Any, name: str) -> None:
    """RevisionId changes on every mutation, publishing included (control-api.md §4.1;
    LocalStack's AWS-validated provider bumps $LATEST's after PublishVersion): a writer holding
    the RevisionId from before the publish gets 412. Publishing nothing changes nothing."""
    before = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]
    published = lambda_client.publish_version(FunctionName=name)
    after = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]
    assert len({before, after, published["RevisionId"]}) == 3
    stale = expect_failure(
        lambda: lambda_client.update_function_configuration(
            FunctionName=name, Description="late", RevisionId=before
        )
    )
    assert (stale.code, stale.status) == ("PreconditionFailedException", 412)
    lambda_client.publish_version(FunctionName=name)  # unchanged: returns version 1
    assert lambda_client.get_function_configuration(FunctionName=name)["RevisionId"] == after
    lambda_client.update_function_configuration(
        FunctionName=name, Description="current", RevisionId=after
    )
    wait_updated(lambda_client, name)


def cold(lam: Any, name: str) -> bool:
    """Whether an invocation of $LATEST started a new environment (Init Duration in REPORT)."""
    response = lam.invoke(FunctionName=name, LogType="Tail")
    return "Init Duration: " in base64.b64decode(response["LogResult"]).decode()


def test_publishing_keeps_the_warm_environments_of_latest(lambda_client: Any, name: str) -> None:
    """A new RevisionId from publishing is not a new configuration: $LATEST's environment
    stays warm. An update of its configuration retires it."""
    assert cold(lambda_client, name)
    assert not cold(lambda_client, name)
    lambda_client.publish_version(FunctionName=name)
    assert not cold(lambda_client, name)
    lambda_client.update_function_configuration(FunctionName=name, Description="changed")
    wait_updated(lambda_client, name)
    assert cold(lambda_client, name)


def test_a_description_alone_publishes_no_new_version(lambda_client: Any, name: str) -> None:
    """PublishVersion's Description describes the version; with $LATEST unchanged AWS returns
    the last version whatever Description is given (LocalStack's AWS-validated check)."""
    first = lambda_client.publish_version(FunctionName=name, Description="first")
    again = lambda_client.publish_version(FunctionName=name)
    other = lambda_client.publish_version(FunctionName=name, Description="other")
    assert [v["Version"] for v in (first, again, other)] == ["1", "1", "1"]
    assert other["Description"] == "first"
    # $LATEST's own Description is configuration: changing it makes a new version.
    lambda_client.update_function_configuration(FunctionName=name, Description="renamed")
    wait_updated(lambda_client, name)
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"


def test_publish_with_the_current_code_sha256_and_revision(lambda_client: Any, name: str) -> None:
    latest = lambda_client.get_function_configuration(FunctionName=name)
    published = lambda_client.publish_version(
        FunctionName=name, CodeSha256=latest["CodeSha256"], RevisionId=latest["RevisionId"]
    )
    assert published["Version"] == "1"


def test_publish_with_another_code_sha256_is_400(lambda_client: Any, name: str) -> None:
    current = code_sha256(tagged_zip("one"))
    other = code_sha256(b"other")
    failure = expect_failure(
        lambda: lambda_client.publish_version(FunctionName=name, CodeSha256=other)
    )
    assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
    assert failure.message == (  # control-api.md §4.12
        f"CodeSHA256 ({other}) is different from current CodeSHA256 in $LATEST ({current}). "
        "Please try again with the CodeSHA256 in $LATEST."
    )


def test_publish_with_a_stale_revision_is_412(lambda_client: Any, name: str) -> None:
    stale = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]
    new_code(lambda_client, name, "two")
    failure = expect_failure(
        lambda: lambda_client.publish_version(FunctionName=name, RevisionId=stale)
    )
    assert (failure.code, failure.status) == ("PreconditionFailedException", 412)


def test_publish_of_a_missing_function_is_404(lambda_client: Any) -> None:
    missing = unique_name("missing")
    failure = expect_failure(lambda: lambda_client.publish_version(FunctionName=missing))
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(missing)}"


def test_publish_flags_on_create_and_update(lambda_client: Any, create_function: Create) -> None:
    function = unique_name("ver")
    created = create_function(function, Code={"ZipFile": tagged_zip("one")}, Publish=True)
    # AWS answers with version 1 under the unqualified ARN, Pending like the function, with no
    # LastUpdateStatus (LocalStack's AWS snapshot: TestLambdaVersions::
    # test_publish_version_on_create, create_response).
    assert (created["Version"], created["FunctionArn"]) == ("1", function_arn(function))
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in created
    wait_active(lambda_client, function)
    version = lambda_client.get_function_configuration(FunctionName=function, Qualifier="1")
    assert (version["FunctionArn"], version["RevisionId"]) == (
        f"{function_arn(function)}:1",
        created["RevisionId"],
    )
    updated = lambda_client.update_function_code(
        FunctionName=function, ZipFile=tagged_zip("two"), Publish=True
    )
    assert updated["Version"] == "2"
    assert tag_of(lambda_client, function, Qualifier="2") == ("2", "two")


def test_version_numbers_are_never_reused(lambda_client: Any, name: str) -> None:
    lambda_client.publish_version(FunctionName=name)
    new_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    lambda_client.delete_function(FunctionName=name, Qualifier="2")
    new_code(lambda_client, name, "three")
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "3"


# --- ListFunctions FunctionVersion=ALL and ListVersionsByFunction ---------------------------


def listed(lam: Any, page_size: int | None = None, **params: Any) -> list[dict[str, Any]]:
    config = {"PageSize": page_size} if page_size else {}
    pages = lam.get_paginator("list_functions").paginate(**params, PaginationConfig=config)
    return [entry for page in pages for entry in page["Functions"]]


def test_list_functions_with_all_versions(lambda_client: Any, name: str) -> None:
    """FunctionVersion=ALL lists every published version too, each under its qualified ARN
    (AWS API reference, ListFunctions; LocalStack's list_functions qualifies them all, $LATEST
    included); without it only $LATEST, unqualified."""
    lambda_client.publish_version(FunctionName=name)
    new_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    mine = [e for e in listed(lambda_client, FunctionVersion="ALL") if e["FunctionName"] == name]
    assert [e["Version"] for e in mine] == ["$LATEST", "1", "2"]
    assert [e["FunctionArn"] for e in mine] == [
        f"{function_arn(name)}:$LATEST",
        f"{function_arn(name)}:1",
        f"{function_arn(name)}:2",
    ]
    assert mine[1]["CodeSha256"] == code_sha256(tagged_zip("one"))
    assert mine[2]["CodeSha256"] == mine[0]["CodeSha256"] == code_sha256(tagged_zip("two"))
    # Pages may end inside a function's versions: small pages give the same entries, once each.
    everything = listed(lambda_client, FunctionVersion="ALL")
    paged = listed(lambda_client, page_size=2, FunctionVersion="ALL")
    assert [e["FunctionArn"] for e in paged] == [e["FunctionArn"] for e in everything]
    (latest_only,) = [e for e in listed(lambda_client) if e["FunctionName"] == name]
    assert (latest_only["Version"], latest_only["FunctionArn"]) == ("$LATEST", function_arn(name))


def test_list_versions_latest_first_with_qualified_arns(lambda_client: Any, name: str) -> None:
    lambda_client.publish_version(FunctionName=name)
    new_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    listed = lambda_client.list_versions_by_function(FunctionName=name)
    versions = listed["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    # awscli's list-versions-by-function example: $LATEST under its qualified ARN too.
    assert [v["FunctionArn"] for v in versions] == [
        f"{function_arn(name)}:{q}" for q in ("$LATEST", "1", "2")
    ]
    assert versions[1]["CodeSha256"] == code_sha256(tagged_zip("one"))
    assert versions[2]["CodeSha256"] == code_sha256(tagged_zip("two"))
    assert "NextMarker" not in listed

    first = lambda_client.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
    rest = lambda_client.list_versions_by_function(
        FunctionName=name, MaxItems=2, Marker=first["NextMarker"]
    )
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert "NextMarker" not in rest


def test_list_versions_of_a_missing_function_is_404(lambda_client: Any) -> None:
    missing = unique_name("missing")
    failure = expect_failure(lambda: lambda_client.list_versions_by_function(FunctionName=missing))
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)


# --- qualified reads and invokes ------------------------------------------------------------


def test_a_version_keeps_its_code_and_configuration(lambda_client: Any, name: str) -> None:
    lambda_client.publish_version(FunctionName=name)
    lambda_client.update_function_configuration(FunctionName=name, MemorySize=256)
    wait_updated(lambda_client, name)
    new_code(lambda_client, name, "two")

    config = lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")
    assert (config["Version"], config["MemorySize"]) == ("1", 128)
    assert config["FunctionArn"] == f"{function_arn(name)}:1"
    assert re.fullmatch(LAST_MODIFIED_RE, config["LastModified"])
    got = lambda_client.get_function(FunctionName=f"{function_arn(name)}:1")
    assert got["Configuration"]["CodeSha256"] == code_sha256(tagged_zip("one"))
    status, _, body = download(got["Code"]["Location"])  # the version's own code
    assert (status, body) == (200, tagged_zip("one"))

    assert tag_of(lambda_client, name, Qualifier="1") == ("1", "one")
    assert tag_of(lambda_client, name) == ("$LATEST", "two")


def test_an_explicit_latest_is_described_under_its_qualified_arn(
    lambda_client: Any, name: str
) -> None:
    """The ARN is qualified whenever a qualifier was given, `$LATEST` included (LocalStack's
    AWS-validated map_config_out); without one it is the function's own ARN."""
    qualified = f"{function_arn(name)}:$LATEST"
    config = lambda_client.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert (config["Version"], config["FunctionArn"]) == ("$LATEST", qualified)
    got = lambda_client.get_function(FunctionName=qualified)
    assert got["Configuration"]["FunctionArn"] == qualified
    plain = lambda_client.get_function_configuration(FunctionName=name)
    assert plain["FunctionArn"] == function_arn(name)


@pytest.mark.parametrize("qualifier", ["9", "0"])
def test_unknown_version_is_404(lambda_client: Any, name: str, qualifier: str) -> None:
    lambda_client.publish_version(FunctionName=name)
    for call in (
        lambda: lambda_client.get_function(FunctionName=name, Qualifier=qualifier),
        lambda: lambda_client.get_function_configuration(FunctionName=f"{name}:{qualifier}"),
        lambda: lambda_client.invoke(FunctionName=name, Qualifier=qualifier),
    ):
        failure = expect_failure(call)
        assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
        assert failure.message == f"Function not found: {function_arn(name)}:{qualifier}"


# --- DeleteFunction with a qualifier --------------------------------------------------------


def test_delete_one_version(lambda_client: Any, name: str) -> None:
    lambda_client.publish_version(FunctionName=name)
    deleted = lambda_client.delete_function(FunctionName=name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    failure = expect_failure(lambda: lambda_client.get_function(FunctionName=name, Qualifier="1"))
    assert failure.status == 404
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"
    # Deleting a version that is not there is a no-op, as on the live service
    # (floci-io/floci#2824 measured it: 204, nothing deleted); the function must exist.
    for absent in ("1", "99"):
        again = lambda_client.delete_function(FunctionName=name, Qualifier=absent)
        assert again["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"
    missing = unique_name("missing")
    failure = expect_failure(
        lambda: lambda_client.delete_function(FunctionName=missing, Qualifier="1")
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(missing)}"


def test_latest_cannot_be_deleted_alone(lambda_client: Any, name: str) -> None:
    failure = expect_failure(
        lambda: lambda_client.delete_function(FunctionName=name, Qualifier="$LATEST")
    )
    assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
    assert failure.message == "$LATEST version cannot be deleted without deleting the function."


def test_delete_function_never_deletes_an_alias(lambda_client: Any, name: str) -> None:
    """LocalStack's AWS-validated delete_function: an alias qualifier is refused."""
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST")
    failure = expect_failure(
        lambda: lambda_client.delete_function(FunctionName=name, Qualifier="live")
    )
    assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
    assert failure.message == "Deletion of aliases is not currently supported."
    assert lambda_client.get_alias(FunctionName=name, Name="live")["Name"] == "live"


def test_a_version_an_alias_references_cannot_be_deleted(lambda_client: Any, name: str) -> None:
    """control-api.md §4.8: 409 while an alias points to the version, as its primary or as its
    additional routing version."""
    lambda_client.publish_version(FunctionName=name)
    new_code(lambda_client, name, "two")
    lambda_client.publish_version(FunctionName=name)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lambda_client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    for version, users in (("1", "canary, live"), ("2", "canary")):
        delete = partial(lambda_client.delete_function, FunctionName=name, Qualifier=version)
        failure = expect_failure(delete)
        assert (failure.code, failure.status) == ("ResourceConflictException", 409)
        assert failure.message == (
            f"Unable to delete version because the following aliases reference it: [{users}]"
        )
    lambda_client.delete_alias(FunctionName=name, Name="canary")
    lambda_client.delete_function(FunctionName=name, Qualifier="2")
    remaining = lambda_client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in remaining] == ["$LATEST", "1"]
