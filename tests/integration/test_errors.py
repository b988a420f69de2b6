"""Every mapped error code: AWS error code, HTTP status, body shape and key message text."""

from __future__ import annotations

import base64
import datetime
import json
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import get_current_datetime
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lamina_support import (
    ZIPPED_LIMIT,
    AwsFailure,
    client,
    create_params,
    expect_failure,
    failure,
    function_arn,
    hello_zip,
    incompressible_zip,
    raw_request,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]
FUNCTIONS = "/2015-03-31/functions"


@pytest.fixture
def loose(server: Any) -> Any:
    """A client without botocore's parameter validation: the server must validate."""
    return client(server.endpoint, validate=False)


def assert_absent(lam: Any, name: str) -> None:
    failed = expect_failure(lambda: lam.get_function(FunctionName=name))
    assert (failed.code, failed.status) == ("ResourceNotFoundException", 404)


def create_fails(lam: Any, name: str, **overrides: Any) -> AwsFailure:
    """CreateFunction must fail and leave no function behind."""
    params = create_params(name, **overrides)
    try:
        lam.create_function(**params)
    except ClientError as error:
        assert_absent(lam, params["FunctionName"])
        return failure(error)
    lam.delete_function(FunctionName=params["FunctionName"])
    raise AssertionError(f"CreateFunction succeeded but an AWS error was expected: {overrides}")


def create_body(name: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::000000000000:role/lambda-role",
        "Handler": "app.handler",
        "Code": {"ZipFile": base64.b64encode(hello_zip()).decode()},
    }
    body.update(overrides)
    return body


# --- 404 ResourceNotFoundException ----------------------------------------------------------------


def test_resource_not_found_404(server: Any, lambda_client: Any) -> None:
    name = unique_name("absent")
    failed = expect_failure(lambda: lambda_client.get_function(FunctionName=name))
    assert failed.code == "ResourceNotFoundException"
    assert failed.status == 404
    assert failed.message == f"Function not found: {function_arn(name)}"

    raw = raw_request(server.endpoint, "GET", f"{FUNCTIONS}/{name}")
    assert raw.status == 404
    assert raw.error_type == "ResourceNotFoundException"
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.headers.get("x-amzn-RequestId")
    assert raw.json() == {"Type": "User", "Message": f"Function not found: {function_arn(name)}"}

    for call in (
        lambda: lambda_client.update_function_configuration(FunctionName=name, Timeout=5),
        lambda: lambda_client.update_function_code(FunctionName=name, ZipFile=hello_zip()),
        lambda: lambda_client.delete_function(FunctionName=name),
    ):
        other = expect_failure(call)
        assert (other.code, other.status) == ("ResourceNotFoundException", 404)


# --- 409 ResourceConflictException -------------------------------------------------------------


def test_duplicate_create_is_409(
    server: Any, lambda_client: Any, create_function: Create, function_name: str
) -> None:
    original = create_function(function_name)
    failed = expect_failure(
        lambda: lambda_client.create_function(
            **create_params(function_name, hello_zip("second"), MemorySize=1024)
        )
    )
    assert failed.code == "ResourceConflictException"
    assert failed.status == 409
    assert failed.message == f"Function already exist: {function_name}"

    raw = raw_request(
        server.endpoint, "POST", FUNCTIONS, body=json.dumps(create_body(function_name)).encode()
    )
    assert raw.status == 409
    assert raw.error_type == "ResourceConflictException"
    assert raw.json() == {"Type": "User", "message": f"Function already exist: {function_name}"}

    current = lambda_client.get_function_configuration(FunctionName=function_name)
    assert current["CodeSha256"] == original["CodeSha256"]
    assert current["MemorySize"] == 128


# --- 412 PreconditionFailedException -----------------------------------------------------------


def test_stale_revision_is_412(
    server: Any, lambda_client: Any, create_function: Create, function_name: str
) -> None:
    created = create_function(function_name)
    wait_active(lambda_client, function_name)
    failed = expect_failure(
        lambda: lambda_client.update_function_configuration(
            FunctionName=function_name, Description="x", RevisionId=created["RevisionId"]
        )
    )
    assert failed.code == "PreconditionFailedException"
    assert failed.status == 412
    assert failed.message == (
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )
    raw = raw_request(
        server.endpoint,
        "PUT",
        f"{FUNCTIONS}/{function_name}/configuration",
        body=json.dumps({"Description": "x", "RevisionId": "not-the-revision"}).encode(),
    )
    assert raw.status == 412
    assert raw.error_type == "PreconditionFailedException"
    assert set(raw.json()) == {"Type", "message"}
    assert lambda_client.get_function_configuration(FunctionName=function_name)["Description"] == ""


def test_concurrent_updates_with_one_revision_exactly_one_wins(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    revision = wait_active(lambda_client, function_name)["RevisionId"]
    barrier = threading.Barrier(10)

    def update(index: int) -> str:
        barrier.wait(timeout=30)
        try:
            lambda_client.update_function_configuration(
                FunctionName=function_name, Description=f"writer-{index}", RevisionId=revision
            )
        except ClientError as error:
            got = failure(error)
            return f"{got.code}:{got.status}"
        return f"ok:{index}"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(update, range(10)))
    winners = [o for o in outcomes if o.startswith("ok:")]
    assert len(winners) == 1, outcomes
    assert (
        sorted(o for o in outcomes if not o.startswith("ok:"))
        == ["PreconditionFailedException:412"] * 9
    )
    winner = winners[0].split(":")[1]
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert config["Description"] == f"writer-{winner}"
    assert config["RevisionId"] != revision


# --- 400 InvalidParameterValueException ----------------------------------------------------------


@pytest.mark.parametrize("runtime", ["python2.7", "java21", "nope"])
def test_unsupported_runtime(loose: Any, runtime: str) -> None:
    name = unique_name("runtime")
    failed = create_fails(loose, name, Runtime=runtime)
    assert failed.code == "InvalidParameterValueException"
    assert failed.status == 400
    assert failed.message.startswith(
        f"Value {runtime} at 'runtime' failed to satisfy constraint: "
        "Member must satisfy enum value set: ["
    )
    assert failed.message.endswith("] or be a valid ARN")
    assert "python3.12" in failed.message


def test_unsupported_runtime_on_update(
    loose: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    wait_active(loose, function_name)
    failed = expect_failure(
        lambda: loose.update_function_configuration(FunctionName=function_name, Runtime="nope")
    )
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    assert failed.message.startswith("Value nope at 'runtime' failed to satisfy constraint")
    assert loose.get_function_configuration(FunctionName=function_name)["Runtime"] == "python3.11"


@pytest.mark.parametrize(
    ("case", "overrides", "message"),
    [
        ("memory-above-10240", {"MemorySize": 10241}, None),
        ("timeout-above-900", {"Timeout": 901}, None),
        (
            "environment-over-4kb",
            {"Environment": {"Variables": {"BIG": "x" * 4100}}},
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit.",
        ),
        (
            "reserved-environment-key",
            {"Environment": {"Variables": {"AWS_REGION": "mars-1"}}},
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys",
        ),
        (
            "six-layers",
            {
                "Layers": [
                    f"arn:aws:lambda:us-east-1:000000000000:layer:layer{i}:1" for i in range(6)
                ]
            },
            "Cannot reference more than 5 layers.",
        ),
        (
            "bad-zip",
            {"Code": {"ZipFile": b"definitely not a zip archive"}},
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        ),
        ("s3-code", {"Code": {"S3Bucket": "my-bucket", "S3Key": "code.zip"}}, None),
    ],
)
def test_invalid_parameter_value(
    loose: Any, case: str, overrides: dict[str, Any], message: str | None
) -> None:
    name = unique_name(case[:20])
    failed = create_fails(loose, name, **overrides)
    assert failed.code == "InvalidParameterValueException", failed
    assert failed.status == 400
    assert failed.message
    if message is not None:
        assert failed.message.startswith(message)


def test_invalid_parameter_value_on_update_leaves_config(
    loose: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    before = wait_active(loose, function_name)
    for changes in (
        {"MemorySize": 10241},
        {"Timeout": 901},
        {"Environment": {"Variables": {"AWS_ACCESS_KEY_ID": "x"}}},
        {"Layers": [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(6)]},
    ):
        failed = expect_failure(
            partial(loose.update_function_configuration, FunctionName=function_name, **changes)
        )
        assert (failed.code, failed.status) == ("InvalidParameterValueException", 400), changes
    after = loose.get_function_configuration(FunctionName=function_name)
    assert after["RevisionId"] == before["RevisionId"]
    assert after["MemorySize"] == 128
    assert after["Timeout"] == 3


def test_update_code_with_bad_zip_is_rejected(
    loose: Any, create_function: Create, function_name: str
) -> None:
    created = create_function(function_name)
    wait_active(loose, function_name)
    bad_zip = expect_failure(
        lambda: loose.update_function_code(FunctionName=function_name, ZipFile=b"not a zip")
    )
    assert (bad_zip.code, bad_zip.status) == ("InvalidParameterValueException", 400)
    assert bad_zip.message == (
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    )
    config = loose.get_function_configuration(FunctionName=function_name)
    assert config["CodeSha256"] == created["CodeSha256"]


# --- 400 ValidationException --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "overrides", "field", "shown"),
    [
        ("role", {"Role": "not-a-role"}, "role", "not-a-role"),
        ("memory-below-128", {"MemorySize": 127}, "memorySize", "127"),
        ("timeout-zero", {"Timeout": 0}, "timeout", "0"),
        ("ephemeral-small", {"EphemeralStorage": {"Size": 511}}, "ephemeralStorage.size", "511"),
        (
            "ephemeral-large",
            {"EphemeralStorage": {"Size": 10241}},
            "ephemeralStorage.size",
            "10241",
        ),
        ("description", {"Description": "d" * 257}, "description", "d" * 257),
        ("handler", {"Handler": "h" * 129}, "handler", "h" * 129),
    ],
)
def test_validation_exception(
    loose: Any, case: str, overrides: dict[str, Any], field: str, shown: str
) -> None:
    name = unique_name(case[:20])
    failed = create_fails(loose, name, **overrides)
    assert failed.code == "ValidationException", failed
    assert failed.status == 400
    assert failed.message.startswith(
        f"1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: "
    ), failed.message


def test_validation_exception_for_bad_names(loose: Any) -> None:
    bad_chars = "bad name!"
    failed = expect_failure(lambda: loose.create_function(**create_params(bad_chars)))
    assert (failed.code, failed.status) == ("ValidationException", 400)
    assert failed.message.startswith(
        f"1 validation error detected: Value '{bad_chars}' at 'functionName' failed to satisfy "
        "constraint: "
    )

    too_long = "n" * 65
    failed = expect_failure(lambda: loose.create_function(**create_params(too_long)))
    assert (failed.code, failed.status) == ("ValidationException", 400)
    assert failed.message == (
        f"1 validation error detected: Value '{too_long}' at 'functionName' failed to satisfy "
        "constraint: Member must have length less than or equal to 64"
    )


def test_environment_variable_key_is_a_map_key_constraint_without_the_value(loose: Any) -> None:
    """A bad variable name breaks the map's key pattern; the map is sensitive, so AWS shows no
    value ("Value at 'environment.variables'")."""
    failed = create_fails(
        loose, unique_name("envkey"), Environment={"Variables": {"1st-key": "secret-value"}}
    )
    assert (failed.code, failed.status) == ("ValidationException", 400)
    assert failed.message == (
        "1 validation error detected: Value at 'environment.variables' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must satisfy regular expression "
        "pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
    )
    assert "secret-value" not in failed.message


def test_validation_exception_raw_role(server: Any) -> None:
    name = unique_name("rawrole")
    raw = raw_request(
        server.endpoint,
        "POST",
        FUNCTIONS,
        body=json.dumps(create_body(name, Role="arn:aws:iam::bad:role/x")).encode(),
    )
    assert raw.status == 400
    assert raw.error_type == "ValidationException"
    body = raw.json()
    message = body.get("message") or body.get("Message")
    assert message.startswith(
        "1 validation error detected: Value 'arn:aws:iam::bad:role/x' at 'role' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
    )


# --- 400 InvalidRequestContentException ---------------------------------------------------


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("truncated-json", b'{"FunctionName": "x", "Runtime": '),
        ("not-json", b"this is not json at all"),
        ("json-array", b"[1, 2, 3]"),
        ("name-is-number", json.dumps(create_body("x", FunctionName=12345)).encode()),
        ("memory-is-string", json.dumps(create_body("x", MemorySize="lots")).encode()),
        ("timeout-is-bool", json.dumps(create_body("x", Timeout=True)).encode()),
        ("code-is-string", json.dumps(create_body("x", Code="zip")).encode()),
        (
            "zip-not-base64",
            json.dumps(create_body("x", Code={"ZipFile": "%%%not-b64%%%"})).encode(),
        ),
        (
            "env-vars-is-list",
            json.dumps(create_body("x", Environment={"Variables": ["a"]})).encode(),
        ),
    ],
)
def test_invalid_request_content(server: Any, lambda_client: Any, case: str, body: bytes) -> None:
    raw = raw_request(
        server.endpoint, "POST", FUNCTIONS, body=body, headers={"Content-Type": "application/json"}
    )
    assert raw.status == 400, raw.content
    assert raw.error_type == "InvalidRequestContentException"
    assert raw.headers["content-type"].startswith("application/json")
    document = raw.json()
    assert document["Type"] == "User"
    assert document.get("message")
    assert_absent(lambda_client, "x")


def test_invalid_request_content_on_update(
    server: Any, lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    before = wait_active(lambda_client, function_name)
    raw = raw_request(
        server.endpoint,
        "PUT",
        f"{FUNCTIONS}/{function_name}/configuration",
        body=b'{"MemorySize": "256"}',
    )
    assert raw.status == 400
    assert raw.error_type == "InvalidRequestContentException"
    after = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after["RevisionId"] == before["RevisionId"]


# --- 413 RequestEntityTooLargeException -------------------------------------------------------


def test_zip_over_50mb_is_413(loose: Any) -> None:
    name = unique_name("huge")
    zip_file = incompressible_zip(ZIPPED_LIMIT + 20_000)
    assert ZIPPED_LIMIT < len(zip_file) < ZIPPED_LIMIT + 100_000
    failed = create_fails(loose, name, Code={"ZipFile": zip_file})
    assert failed.code == "RequestEntityTooLargeException"
    assert failed.status == 413
    assert failed.message == "Zipped size must be smaller than 52428800 bytes"


# --- 403 authentication ---------------------------------------------------------------------------


def test_missing_authentication_token_403(server: Any) -> None:
    raw = raw_request(server.endpoint, "GET", FUNCTIONS, sign=False)
    assert raw.status == 403
    assert raw.error_type == "MissingAuthenticationTokenException"
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json()["Type"] == "User"


def test_unknown_access_key_403(server: Any) -> None:
    stranger = client(server.endpoint, access_key="AKIDNOTKNOWN0000", secret_key="whatever")
    failed = expect_failure(lambda: stranger.list_functions())
    assert failed.code == "UnrecognizedClientException"
    assert failed.status == 403
    assert failed.message == "The security token included in the request is invalid."


def test_wrong_secret_403(server: Any) -> None:
    wrong = client(server.endpoint, access_key="test", secret_key="not-the-secret")
    failed = expect_failure(lambda: wrong.list_functions())
    assert failed.code == "InvalidSignatureException"
    assert failed.status == 403
    assert failed.message.startswith("The request signature we calculated does not match")


def test_tampered_body_after_signing_403(server: Any) -> None:
    """Signature computed for one body, another body sent."""
    url = f"{server.endpoint}{FUNCTIONS}"
    signed_body = json.dumps(create_body(unique_name("signed"))).encode()
    request = AWSRequest(method="POST", url=url, data=signed_body)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(request)
    sent_name = unique_name("sent")
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    with httpx.Client(timeout=60) as http:
        response = http.post(
            url, content=json.dumps(create_body(sent_name)).encode(), headers=headers
        )
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert_absent(client(server.endpoint), sent_name)


@pytest.mark.parametrize("minutes", [-7, 7, -20])
def test_clock_skew_403(server: Any, monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    def skewed(remove_tzinfo: bool = True) -> datetime.datetime:
        return get_current_datetime(remove_tzinfo) + datetime.timedelta(minutes=minutes)

    monkeypatch.setattr("botocore.auth.get_current_datetime", skewed)
    lam = client(server.endpoint)
    failed = expect_failure(lambda: lam.list_functions())
    assert failed.code == "InvalidSignatureException"
    assert failed.status == 403
    assert "Signature" in failed.message

    # Within the allowed skew the same client is accepted.
    monkeypatch.setattr(
        "botocore.auth.get_current_datetime",
        lambda remove_tzinfo=True: (
            get_current_datetime(remove_tzinfo) + datetime.timedelta(minutes=2)
        ),
    )
    assert lam.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_incomplete_signature_400(server: Any) -> None:
    raw = raw_request(
        server.endpoint,
        "GET",
        FUNCTIONS,
        sign=False,
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=garbage", "X-Amz-Date": "x"},
    )
    assert raw.status == 400
    assert raw.error_type == "IncompleteSignatureException"


def test_signature_for_another_service_403(server: Any) -> None:
    url = f"{server.endpoint}{FUNCTIONS}"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    with httpx.Client(timeout=60) as http:
        response = http.get(url, headers=headers)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


# --- 501 / unknown operations -------------------------------------------------------------------


def test_not_implemented_operation_501(
    lambda_client: Any, create_function: Create, function_name: str
) -> None:
    create_function(function_name)
    failed = expect_failure(lambda: lambda_client.list_code_signing_configs())
    assert failed.code == "NotImplementedException"
    assert failed.status == 501
    assert "ListCodeSigningConfigs" in failed.message
    failed = expect_failure(
        lambda: lambda_client.get_function_code_signing_config(FunctionName=function_name)
    )
    assert failed.code == "NotImplementedException"
    assert failed.status == 501
    assert "GetFunctionCodeSigningConfig" in failed.message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2015-03-31/no-such-thing"),
        ("POST", "/totally/unknown/path"),
        ("GET", "/"),
        ("PATCH", "/2015-03-31/functions"),
        ("GET", "/2015-03-31/functions/a/b/c/d/e"),
    ],
)
def test_unknown_operation_404(server: Any, method: str, path: str) -> None:
    raw = raw_request(server.endpoint, method, path)
    assert raw.status == 404
    assert raw.error_type == "UnknownOperationException"
    assert raw.headers["content-type"].startswith("application/json")
    assert b"<html" not in raw.content.lower()
    document = raw.json()
    assert document.get("message") or document.get("Message")


def test_function_name_with_encoded_arn_in_path(
    server: Any, create_function: Create, function_name: str
) -> None:
    """The path label is a percent-encoded ARN (what every SDK sends)."""
    create_function(function_name)
    encoded = urllib.parse.quote(function_arn(function_name), safe="")
    raw = raw_request(server.endpoint, "GET", f"{FUNCTIONS}/{encoded}/configuration")
    assert raw.status == 200
    assert raw.json()["FunctionName"] == function_name
