"""Aliases end to end (control-api.md §4.13): every operation and error through boto3, invoking
through an alias (weighted routing checked statistically), the AWS CLI, Lamina's own CLI, and
aliases surviving a restart."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from lamina_support import (
    UUID_RE,
    aws_json,
    client,
    create_params,
    expect_failure,
    function_arn,
    lamina_cli,
    make_zip,
    start_server,
    unique_name,
    wait_active,
    wait_updated,
)

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]
AWS = str(Path(sys.executable).with_name("aws"))
ROUTING_INVOKES = 400


def tagged_zip(tag: str) -> bytes:
    """A handler that says which code ran and as which version and ARN."""
    return make_zip(
        {
            "app.py": "def handler(event, context):\n"
            f"    return {{'tag': {tag!r}, 'version': context.function_version,\n"
            "            'arn': context.invoked_function_arn}\n"
        }
    )


def with_two_versions(lam: Any, create: Create) -> str:
    """A function whose version 1 answers tag 'one' and version 2 tag 'two'."""
    name = unique_name("alias")
    create(name, Code={"ZipFile": tagged_zip("one")})
    wait_active(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=tagged_zip("two"))
    wait_updated(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    return name


@pytest.fixture
def name(lambda_client: Any, create_function: Create) -> str:
    return with_two_versions(lambda_client, create_function)


@pytest.fixture
def raw_client(server: Any) -> Any:
    """No botocore-side validation: the server's model validation answers."""
    return client(server.endpoint, validate=False)


def alias_arn(function: str, alias: str) -> str:
    return f"{function_arn(function)}:{alias}"


def invoke(lam: Any, function: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """(X-Amz-Executed-Version, the handler's answer)."""
    response = lam.invoke(FunctionName=function, **kwargs)
    with response["Payload"] as body:
        answer: dict[str, Any] = json.loads(body.read())
    assert response.get("FunctionError") is None, answer
    return response["ExecutedVersion"], answer


# --- the operations -------------------------------------------------------------------------


def test_alias_lifecycle(lambda_client: Any, name: str) -> None:
    created = lambda_client.create_alias(
        FunctionName=name, Name="live", FunctionVersion="1", Description="production"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    created.pop("ResponseMetadata")
    assert created == {
        "AliasArn": alias_arn(name, "live"),
        "Name": "live",
        "FunctionVersion": "1",
        "Description": "production",
        "RevisionId": created["RevisionId"],
    }
    assert_uuid(created["RevisionId"])

    got = lambda_client.get_alias(FunctionName=name, Name="live")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    got.pop("ResponseMetadata")
    assert got == created

    updated = lambda_client.update_alias(
        FunctionName=name, Name="live", FunctionVersion="2", RevisionId=created["RevisionId"]
    )
    assert (updated["FunctionVersion"], updated["Description"]) == ("2", "production")
    assert updated["RevisionId"] != created["RevisionId"]

    listed = lambda_client.list_aliases(FunctionName=name)["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in listed] == [("live", "2")]

    deleted = lambda_client.delete_alias(FunctionName=name, Name="live")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    failure = expect_failure(lambda: lambda_client.get_alias(FunctionName=name, Name="live"))
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Cannot find alias arn: {alias_arn(name, 'live')}"


def assert_uuid(value: str) -> None:
    assert re.fullmatch(UUID_RE, value), value


def test_alias_without_description_answers_an_empty_one(lambda_client: Any, name: str) -> None:
    created = lambda_client.create_alias(FunctionName=name, Name="bare", FunctionVersion="$LATEST")
    assert (created["Description"], created["FunctionVersion"]) == ("", "$LATEST")
    assert "RoutingConfig" not in created


def test_alias_by_function_arn(lambda_client: Any, name: str) -> None:
    lambda_client.create_alias(FunctionName=function_arn(name), Name="arn", FunctionVersion="1")
    got = lambda_client.get_alias(FunctionName=function_arn(name), Name="arn")
    assert got["AliasArn"] == alias_arn(name, "arn")


def test_routing_config_round_trips_and_can_be_cleared(lambda_client: Any, name: str) -> None:
    created = lambda_client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}},
    )
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    # Options not given keep their value.
    kept = lambda_client.update_alias(FunctionName=name, Name="canary", Description="d")
    assert kept["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    cleared = lambda_client.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in cleared
    assert cleared["Description"] == "d"


def test_list_aliases_filters_by_version_and_pages(lambda_client: Any, name: str) -> None:
    for alias, version in (("a", "1"), ("b", "2"), ("c", "1"), ("d", "$LATEST"), ("e", "1")):
        lambda_client.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)

    ones = lambda_client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in ones] == ["a", "c", "e"]
    latest = lambda_client.list_aliases(FunctionName=name, FunctionVersion="$LATEST")
    assert [a["Name"] for a in latest["Aliases"]] == ["d"]

    first = lambda_client.list_aliases(FunctionName=name, MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["a", "b"]
    second = lambda_client.list_aliases(FunctionName=name, MaxItems=2, Marker=first["NextMarker"])
    assert [a["Name"] for a in second["Aliases"]] == ["c", "d"]
    third = lambda_client.list_aliases(FunctionName=name, MaxItems=2, Marker=second["NextMarker"])
    assert [a["Name"] for a in third["Aliases"]] == ["e"]
    assert "NextMarker" not in third

    pages = lambda_client.get_paginator("list_aliases").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 2}
    )
    assert [a["Name"] for page in pages for a in page["Aliases"]] == ["a", "b", "c", "d", "e"]


# --- errors ---------------------------------------------------------------------------------


def test_duplicate_alias_is_409(lambda_client: Any, name: str) -> None:
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    failure = expect_failure(
        lambda: lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    )
    assert (failure.code, failure.status) == ("ResourceConflictException", 409)
    assert failure.message == f"Alias already exists: {alias_arn(name, 'live')}"


def test_missing_alias_is_404_to_read_and_update_and_204_to_delete(
    lambda_client: Any, name: str
) -> None:
    """GetAlias: "Cannot find alias arn" (LocalStack's AWS snapshot alias_does_not_exist_esc);
    UpdateAlias: "Alias not found" (a real AWS error quoted in apex/up#606); DeleteAlias of an
    alias that is not there: 204 (localstack/localstack#11832, #11878)."""
    arn = alias_arn(name, "nope")
    failure = expect_failure(lambda: lambda_client.get_alias(FunctionName=name, Name="nope"))
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Cannot find alias arn: {arn}"
    failure = expect_failure(
        lambda: lambda_client.update_alias(FunctionName=name, Name="nope", FunctionVersion="1")
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Alias not found: {arn}"
    deleted = lambda_client.delete_alias(FunctionName=name, Name="nope")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.list_aliases(FunctionName=name)["Aliases"] == []


def test_alias_of_a_missing_function_is_404(lambda_client: Any) -> None:
    missing = unique_name("missing")
    message = f"Function not found: {function_arn(missing)}"
    # CreateAlias names the version it was to point at (LocalStack's AWS snapshot
    # routing_config_exc_fn_doesnotexist: "Function not found: ...:function:<name>:1").
    created = expect_failure(
        lambda: lambda_client.create_alias(FunctionName=missing, Name="a", FunctionVersion="1")
    )
    assert (created.code, created.status) == ("ResourceNotFoundException", 404)
    assert created.message == f"Function not found: {function_arn(missing)}:1"
    calls: list[Callable[[], object]] = [
        lambda: lambda_client.get_alias(FunctionName=missing, Name="a"),
        lambda: lambda_client.list_aliases(FunctionName=missing),
        lambda: lambda_client.delete_alias(FunctionName=missing, Name="a"),
    ]
    for call in calls:
        failure = expect_failure(call)
        assert (failure.code, failure.status, failure.message) == (
            "ResourceNotFoundException",
            404,
            message,
        )


def test_alias_to_a_missing_version_is_404(lambda_client: Any, name: str) -> None:
    failure = expect_failure(
        lambda: lambda_client.create_alias(FunctionName=name, Name="a", FunctionVersion="9")
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(name)}:9"

    lambda_client.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    failure = expect_failure(
        lambda: lambda_client.update_alias(FunctionName=name, Name="a", FunctionVersion="7")
    )
    assert failure.message == f"Function not found: {function_arn(name)}:7"


def test_stale_revision_id_is_412(lambda_client: Any, name: str) -> None:
    created = lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lambda_client.update_alias(FunctionName=name, Name="live", Description="moved on")
    failure = expect_failure(
        lambda: lambda_client.update_alias(
            FunctionName=name, Name="live", FunctionVersion="2", RevisionId=created["RevisionId"]
        )
    )
    assert (failure.code, failure.status) == ("PreconditionFailedException", 412)
    assert failure.message == (
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )
    assert lambda_client.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"


@pytest.mark.parametrize(
    ("primary", "weights", "message"),
    [
        (
            "1",
            {"2": 0.1, "3": 0.1},
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ),
        (
            "1",
            {"1": 0.5},
            "Invalid function version 1. Function version 1 is already included in routing "
            "configuration.",
        ),
        (
            "$LATEST",
            {"2": 0.5},
            "$LATEST is not supported for an alias pointing to more than 1 version",
        ),
    ],
    ids=["two-additional-versions", "additional-is-primary", "latest-primary"],
)
def test_invalid_routing_is_400(
    lambda_client: Any, name: str, primary: str, weights: dict[str, float], message: str
) -> None:
    """Messages as LocalStack's AWS-validated provider (_create_routing_config_model)."""
    failure = expect_failure(
        lambda: lambda_client.create_alias(
            FunctionName=name,
            Name="split",
            FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )
    )
    assert (failure.code, failure.status, failure.message) == (
        "InvalidParameterValueException",
        400,
        message,
    )
    assert lambda_client.list_aliases(FunctionName=name)["Aliases"] == []


def test_routing_to_a_missing_version_is_404(lambda_client: Any, name: str) -> None:
    failure = expect_failure(
        lambda: lambda_client.create_alias(
            FunctionName=name,
            Name="split",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"9": 0.5}},
        )
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(name)}:9"


def test_update_checks_routing_against_the_new_primary(lambda_client: Any, name: str) -> None:
    lambda_client.create_alias(
        FunctionName=name,
        Name="split",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    failure = expect_failure(
        lambda: lambda_client.update_alias(FunctionName=name, Name="split", FunctionVersion="2")
    )
    assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
    assert failure.message.startswith("Invalid function version 2.")
    failure = expect_failure(
        lambda: lambda_client.update_alias(
            FunctionName=name, Name="split", FunctionVersion="$LATEST"
        )
    )
    assert (
        failure.message == "$LATEST is not supported for an alias pointing to more than 1 version"
    )


def routed(weights: dict[str, float]) -> dict[str, Any]:
    return {
        "Name": "v",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": weights},
    }


WEIGHTS = "'routingConfig.additionalVersionWeights'"


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"Name": "123", "FunctionVersion": "1"}, "'name'"),
        ({"Name": "x" * 129, "FunctionVersion": "1"}, "'name'"),
        ({"Name": "bad.name", "FunctionVersion": "1"}, "'name'"),
        ({"Name": "v", "FunctionVersion": "one"}, "'functionVersion'"),
        (routed({"2": 1.5}), WEIGHTS),
        (routed({"2": -0.1}), WEIGHTS),
        (routed({"$LATEST": 0.1}), WEIGHTS),
    ],
    ids=[
        "all-digits", "129-chars", "dot", "version-word", "weight-over-1", "weight-negative",
        "latest-key",
    ],
)  # fmt: skip
def test_model_constraints_are_validation_errors(
    raw_client: Any, name: str, params: dict[str, Any], where: str
) -> None:
    """The alias name pattern (?!^[0-9]+$)([a-zA-Z0-9-_]+), 1-128, weights in [0.0, 1.0]
    and numeric additional versions are the model's constraints (control-api.md §1.1)."""
    failure = expect_failure(lambda: raw_client.create_alias(FunctionName=name, **params))
    assert (failure.code, failure.status) == ("ValidationException", 400)
    assert failure.message.startswith("1 validation error detected: Value ")
    assert f"at {where} failed to satisfy constraint" in failure.message


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            {"2": 1.5},
            "1 validation error detected: Value '{2=1.5}' at "
            "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must "
            "satisfy constraint: [Member must have value less than or equal to 1.0, Member must "
            "have value greater than or equal to 0.0, Member must not be null]",
        ),
        (
            {"$LATEST": 0.1},
            "1 validation error detected: Value '{$LATEST=0.1}' at "
            "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must "
            "satisfy constraint: [Member must have length less than or equal to 1024, Member must "
            "have length greater than or equal to 1, Member must satisfy regular expression "
            "pattern: [0-9]+]",
        ),
    ],
    ids=["weight-over-1", "latest-key"],
)
def test_routing_weight_messages_are_map_constraints(
    raw_client: Any, name: str, weights: dict[str, float], message: str
) -> None:
    """A map's entries are reported by aspect with all its rules, as LocalStack's AWS-validated
    CreateAlias errors show (localstack services/lambda_/provider.py,
    _create_routing_config_model)."""
    failure = expect_failure(lambda: raw_client.create_alias(FunctionName=name, **routed(weights)))
    assert (failure.code, failure.status) == ("ValidationException", 400)
    assert failure.message == message


def test_all_digit_alias_name_message(raw_client: Any, name: str) -> None:
    failure = expect_failure(
        lambda: raw_client.create_alias(FunctionName=name, Name="123", FunctionVersion="1")
    )
    assert failure.message == (
        "1 validation error detected: Value '123' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
    )


# --- qualifier resolution -------------------------------------------------------------------


def test_invoke_through_an_alias(lambda_client: Any, name: str) -> None:
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    executed, answer = invoke(lambda_client, name, Qualifier="live")
    assert executed == "1"
    # The runtime sees the version that runs and the ARN it was invoked by (with the alias).
    assert answer == {"tag": "one", "version": "1", "arn": alias_arn(name, "live")}
    executed, answer = invoke(lambda_client, alias_arn(name, "live"))
    assert (executed, answer["tag"]) == ("1", "one")

    lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    executed, answer = invoke(lambda_client, name, Qualifier="live")
    assert (executed, answer["tag"]) == ("2", "two")


def test_invoke_through_an_alias_of_latest(lambda_client: Any, name: str) -> None:
    lambda_client.create_alias(FunctionName=name, Name="edge", FunctionVersion="$LATEST")
    executed, answer = invoke(lambda_client, name, Qualifier="edge")
    assert (executed, answer["tag"], answer["version"]) == ("$LATEST", "two", "$LATEST")


def test_unknown_alias_is_404_function_not_found(lambda_client: Any, name: str) -> None:
    """control-api.md §4.10: unknown function/alias/version -> `Function not found: <arn>`."""
    for call in (
        lambda: lambda_client.invoke(FunctionName=name, Qualifier="nope"),
        lambda: lambda_client.get_function(FunctionName=name, Qualifier="nope"),
        lambda: lambda_client.get_function_configuration(FunctionName=f"{name}:nope"),
    ):
        failure = expect_failure(call)
        assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
        assert failure.message == f"Function not found: {alias_arn(name, 'nope')}"


def test_weighted_routing_is_statistically_right(lambda_client: Any, name: str) -> None:
    """400 invokes at weight 0.3: the additional version's share stays within 4 sigma of the
    binomial mean, and X-Amz-Executed-Version always names the code that answered."""
    lambda_client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    tags = {"1": "one", "2": "two"}
    executed = []
    for _ in range(ROUTING_INVOKES):
        version, answer = invoke(lambda_client, name, Qualifier="canary")
        assert answer["tag"] == tags[version]
        assert answer["version"] == version
        assert answer["arn"] == alias_arn(name, "canary")
        executed.append(version)
    mean = ROUTING_INVOKES * 0.3
    sigma = math.sqrt(ROUTING_INVOKES * 0.3 * 0.7)
    assert abs(executed.count("2") - mean) <= 4 * sigma, executed.count("2")
    assert set(executed) == {"1", "2"}


@pytest.mark.parametrize(("weight", "expected"), [(0.0, "1"), (1.0, "2")])
def test_routing_weight_bounds(lambda_client: Any, name: str, weight: float, expected: str) -> None:
    lambda_client.create_alias(
        FunctionName=name,
        Name="edge",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": weight}},
    )
    assert {invoke(lambda_client, name, Qualifier="edge")[0] for _ in range(40)} == {expected}


def test_get_function_through_an_alias_describes_its_primary(lambda_client: Any, name: str) -> None:
    """GetFunction/GetFunctionConfiguration through an alias answer the primary version's
    configuration under the alias's ARN, never a weighted draw (LocalStack, AWS-validated)."""
    lambda_client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}},
    )
    one = lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")
    for _ in range(5):
        config = lambda_client.get_function_configuration(FunctionName=name, Qualifier="canary")
        assert (config["Version"], config["CodeSha256"]) == ("1", one["CodeSha256"])
        assert config["FunctionArn"] == alias_arn(name, "canary")
    got = lambda_client.get_function(FunctionName=alias_arn(name, "canary"))
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["FunctionArn"] == alias_arn(name, "canary")
    assert got["Configuration"]["RevisionId"] == one["RevisionId"]


def test_deleting_the_function_deletes_its_aliases(
    lambda_client: Any, create_function: Create, name: str
) -> None:
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lambda_client.delete_function(FunctionName=name)
    create_function(name)
    assert lambda_client.list_aliases(FunctionName=name)["Aliases"] == []
    failure = expect_failure(lambda: lambda_client.get_alias(FunctionName=name, Name="live"))
    assert failure.message == f"Cannot find alias arn: {alias_arn(name, 'live')}"


# --- the AWS CLI ----------------------------------------------------------------------------


@pytest.fixture
def aws(server: Any, tmp_path: Path) -> Callable[..., Any]:
    """`aws lambda <args>` as JSON."""
    return partial(aws_json, server.endpoint, tmp_path / "home", "lambda")


def test_aws_cli_alias_commands(aws: Callable[..., Any], lambda_client: Any, name: str) -> None:
    created = aws(
        "create-alias", "--function-name", name, "--name", "live", "--function-version", "1",
        "--description", "from the aws cli",
        "--routing-config", "AdditionalVersionWeights={2=0.5}",
    )  # fmt: skip
    assert created["AliasArn"] == alias_arn(name, "live")
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    updated = aws(
        "update-alias", "--function-name", name, "--name", "live", "--function-version", "2",
        "--routing-config", "AdditionalVersionWeights={}", "--revision-id", created["RevisionId"],
    )  # fmt: skip
    assert updated["FunctionVersion"] == "2"
    assert "RoutingConfig" not in updated
    assert aws("get-alias", "--function-name", name, "--name", "live") == updated
    listed = aws("list-aliases", "--function-name", name, "--function-version", "2")
    assert listed["Aliases"] == [updated]
    assert aws("delete-alias", "--function-name", name, "--name", "live") is None
    assert lambda_client.list_aliases(FunctionName=name)["Aliases"] == []


# --- Lamina's CLI ---------------------------------------------------------------------------


def lamina(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return lamina_cli(server.endpoint, *args)


def test_lamina_cli_versions_and_aliases(server: Any, lambda_client: Any, name: str) -> None:
    unchanged = lamina(server, "publish", name)
    assert unchanged.returncode == 0, unchanged.stderr
    # Nothing changed since version 2: PublishVersion returns it, and the CLI says so.
    assert unchanged.stdout.startswith(f"No change since version 2 of {name}: nothing published\n")
    assert f"{function_arn(name)}:2" in unchanged.stdout
    lambda_client.update_function_code(FunctionName=name, ZipFile=tagged_zip("three"))
    wait_updated(lambda_client, name)
    published = lamina(server, "publish", name, "--description", "third")
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith(f"Published version 3 of {name}\n")
    assert f"{function_arn(name)}:3" in published.stdout
    versions = lamina(server, "versions", name)
    assert versions.returncode == 0, versions.stderr
    rows = [line.split() for line in versions.stdout.splitlines()]
    assert [row[0] for row in rows] == ["VERSION", "$LATEST", "1", "2", "3"]
    assert rows[-1][-1] == "third"

    created = lamina(server, "alias", "create", name, "live", "--version", "1", "--weight", "2=0.1")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Created alias live -> version 1 (routing 2=0.1)\n")
    assert alias_arn(name, "live") in created.stdout
    listed = lamina(server, "aliases", name)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == ["live", "1", "2=0.1", "-"]

    updated = lamina(server, "alias", "update", name, "live", "--version", "2", "--no-routing")
    assert updated.returncode == 0, updated.stderr
    got = lambda_client.get_alias(FunctionName=name, Name="live")
    assert got["FunctionVersion"] == "2"
    assert "RoutingConfig" not in got

    deleted = lamina(server, "alias", "delete", name, "live")
    assert (deleted.returncode, deleted.stdout) == (0, f"Deleted alias live of {name}.\n")
    missing = lamina(server, "alias", "delete", name, "live")
    assert missing.returncode == 1
    assert missing.stderr == (
        f"lamina: ResourceNotFoundException: Cannot find alias arn: {alias_arn(name, 'live')}\n"
    )
    bad = lamina(server, "alias", "create", name, "x", "--version", "1", "--weight", "2")
    assert bad.returncode == 2
    assert "VERSION=WEIGHT" in bad.stderr
    nothing = lamina(server, "alias", "update", name, "x")
    assert nothing.returncode == 2
    assert "nothing to update" in nothing.stderr
    twice = lamina(server, "alias", "update", name, "x", "--weight", "2=0.2", "--weight", "2=0.3")
    assert twice.returncode == 2
    assert "given twice" in twice.stderr


# --- persistence ----------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    started: list[Any] = []

    def start() -> Any:
        live = start_server(tmp_path / "data")
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def test_aliases_survive_a_restart(own_server: Callable[[], Any]) -> None:
    first = own_server()
    lam = client(first.endpoint)
    name = unique_name("persist")
    lam.create_function(**create_params(name, tagged_zip("one"), Publish=True))
    wait_active(lam, name)
    lam.update_function_code(FunctionName=name, ZipFile=tagged_zip("two"), Publish=True)
    created = lam.create_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}},
    )
    created.pop("ResponseMetadata")
    first.stop()

    second = own_server()
    lam = client(second.endpoint)
    got = lam.get_alias(FunctionName=name, Name="live")
    got.pop("ResponseMetadata")
    assert got == created
    executed, answer = invoke(lam, name, Qualifier="live")
    assert (executed, answer["tag"]) == ("2", "two")
