"""The model-driven wire layer: routing, binding, validation and output binding."""

from __future__ import annotations

import base64

import pytest

from lamina.api.wire import Router, WireRequest, build_response, load_service_model, parse_input
from lamina.errors import MalformedRequest, UnknownOperation, ValidationFailed

MODEL = load_service_model("lambda")
ROUTER = Router(MODEL)


def request(method: str, path: str, body: bytes = b"", **headers: str) -> WireRequest:
    raw_path, _, raw_query = path.partition("?")
    from urllib.parse import parse_qsl

    return WireRequest(method, raw_path, parse_qsl(raw_query), headers, body)


def test_every_operation_in_the_model_is_routable() -> None:
    for name in MODEL.operation_names:
        operation = MODEL.operation_model(name)
        path, _, query = operation.http["requestUri"].partition("?")
        concrete = (
            path.replace("{FunctionName}", "f").replace("{", "").replace("+}", "").replace("}", "")
        )
        found, _ = ROUTER.resolve(request(operation.http["method"], f"{concrete}?{query}"))
        assert found.name == name, (name, found.name)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/2018-10-31/layers?find=LayerVersion&Arn=x", "GetLayerVersionByArn"),
        ("GET", "/2018-10-31/layers", "ListLayers"),
        (
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency?List=ALL",
            "ListProvisionedConcurrencyConfigs",
        ),
        (
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1",
            "GetProvisionedConcurrencyConfig",
        ),
        ("GET", "/2015-03-31/functions/f", "GetFunction"),
        ("GET", "/2015-03-31/functions/f/configuration", "GetFunctionConfiguration"),
    ],
)
def test_query_literals_and_specificity_pick_the_right_operation(
    method: str, path: str, operation: str
) -> None:
    assert ROUTER.resolve(request(method, path))[0].name == operation


def test_percent_encoded_arn_label_is_decoded() -> None:
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af"
    _operation, labels = ROUTER.resolve(request("GET", f"/2015-03-31/functions/{arn}"))
    assert labels["FunctionName"] == "arn:aws:lambda:us-east-1:000000000000:function:f"


def test_unknown_path_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownOperation):
        ROUTER.resolve(request("GET", "/nothing/here"))


def test_binding_uri_query_header_and_body() -> None:
    op = MODEL.operation_model("CreateFunction")
    body = (
        b'{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r",'
        b'"Code":{"ZipFile":"' + base64.b64encode(b"PK") + b'"},"MemorySize":256}'
    )
    params = parse_input(op, {}, request("POST", "/2015-03-31/functions", body))
    assert params["Code"]["ZipFile"] == b"PK"
    assert params["MemorySize"] == 256
    op = MODEL.operation_model("UntagResource")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    params = parse_input(op, {"Resource": arn}, request("DELETE", "/x?tagKeys=a&tagKeys=b"))
    assert params["TagKeys"] == ["a", "b"]
    op = MODEL.operation_model("ListFunctions")
    assert parse_input(op, {}, request("GET", "/x?MaxItems=7"))["MaxItems"] == 7


def test_model_constraints_produce_aws_validation_messages() -> None:
    op = MODEL.operation_model("CreateFunction")
    body = b'{"FunctionName":"f","Role":"nope","Code":{},"MemorySize":64}'
    with pytest.raises(ValidationFailed) as caught:
        parse_input(op, {}, request("POST", "/2015-03-31/functions", body))
    message = caught.value.message
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value 'nope' at 'role' failed to satisfy constraint: Member must satisfy regular"
        in message
    )
    assert (
        "Value '64' at 'memorySize' failed to satisfy constraint: "
        "Member must have value greater than or equal to 128" in message
    )


def test_missing_required_member() -> None:
    op = MODEL.operation_model("CreateFunction")
    with pytest.raises(ValidationFailed, match="Value null at 'role'"):
        parse_input(op, {}, request("POST", "/", b'{"FunctionName":"f","Code":{}}'))


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1,2]",
        b'{"FunctionName":5}',
        b'{"MemorySize":"big"}',
        b'{"Publish":1}',
        b'{"Code":{"ZipFile":"***"}}',
    ],
)
def test_malformed_bodies_and_wrong_types(body: bytes) -> None:
    op = MODEL.operation_model("CreateFunction")
    with pytest.raises(MalformedRequest):
        parse_input(op, {}, request("POST", "/2015-03-31/functions", body))


def test_output_binding_status_headers_and_body() -> None:
    delete = build_response(MODEL.operation_model("DeleteFunction"), {"StatusCode": 204})
    assert (delete.status, delete.body) == (204, b"")
    invoke = build_response(
        MODEL.operation_model("Invoke"),
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": b'{"x":1}',
            "ExecutedVersion": "$LATEST",
        },
    )
    assert invoke.headers["X-Amz-Function-Error"] == "Unhandled"
    assert invoke.headers["X-Amz-Executed-Version"] == "$LATEST"
    assert invoke.body == b'{"x":1}'
    get = build_response(
        MODEL.operation_model("GetAccountSettings"), {"AccountUsage": {"FunctionCount": 1}}
    )
    assert get.status == 200
    assert get.body == b'{"AccountUsage":{"FunctionCount":1}}'
