"""The awsJson1_1 wire protocol (CloudWatch Logs), driven by botocore's service model.

`POST /` with `X-Amz-Target: <targetPrefix>.<Operation>` and a JSON body of the input members;
the answer is the output members as JSON, and errors are status 400 (5xx for ours) with
`{"__type": code, "message": ...}`. Binding and validation are api/wire.py's: every member of
a JSON-protocol input is a body member, so `parse_input` applies unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from botocore.model import OperationModel

from lamina.api.context import Call, Handler, Services
from lamina.api.errors import json_error
from lamina.api.wire import WireRequest, WireResponse, load_service_model, parse_input
from lamina.errors import LaminaError, UnknownOperation, UnsupportedOperation

CONTENT_TYPE = "application/x-amz-json-1.1"


class JsonApi:
    """One JSON-protocol service: operations by X-Amz-Target, handlers by operation name."""

    def __init__(self, service: str, handlers: Mapping[str, Handler], services: Services) -> None:
        model = load_service_model(service)
        self._prefix = str(model.metadata["targetPrefix"])
        self._operations: dict[str, OperationModel] = {
            name: model.operation_model(name) for name in model.operation_names
        }
        self._handlers = handlers
        self._services = services

    async def handle(
        self,
        headers: Mapping[str, str],
        body: bytes,
        region: str,
        request_id: str,
        base_url: str,
    ) -> WireResponse:
        prefix, _, name = headers.get("x-amz-target", "").partition(".")
        operation = self._operations.get(name) if prefix == self._prefix else None
        if operation is None:
            raise UnknownOperation(f"No operation {headers.get('x-amz-target', '')!r}.")
        handler = self._handlers.get(name)
        if handler is None:
            raise UnsupportedOperation(name)
        request = WireRequest("POST", "/", [], headers, body or b"{}")
        params = parse_input(operation, {}, request)
        output = await handler(Call(self._services, params, region, base_url, request_id))
        return json_response(output)


def json_response(output: Mapping[str, Any]) -> WireResponse:
    return WireResponse(200, {"Content-Type": CONTENT_TYPE}, orjson.dumps(_present(output)))


def _present(value: Any) -> Any:
    """The value without its absent (None) members, at every depth."""
    if isinstance(value, Mapping):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(item) for item in value]
    return value


def json_error_response(error: LaminaError) -> WireResponse:
    status, code, body = json_error(error)
    headers = {"Content-Type": CONTENT_TYPE, "x-amzn-ErrorType": code, **error.headers()}
    return WireResponse(status, headers, body)


def is_json_request(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an ASGI request speaks the JSON protocol (its errors take that shape)."""
    return any(name.lower() == b"x-amz-target" for name, _ in headers)
