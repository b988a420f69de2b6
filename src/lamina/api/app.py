"""The ASGI application: read -> authenticate -> route -> bind -> handle -> serialize.

A plain ASGI callable rather than a framework router: every Lambda route comes from the
service model (api/wire.py), and the hot path stays a handful of dictionary lookups.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from lamina.api.codelinks import PATH_PREFIX
from lamina.api.context import Call, Services
from lamina.api.errors import aws_error_for, error_body
from lamina.api.handlers import HANDLERS
from lamina.api.handlers.logs import HANDLERS as LOGS_HANDLERS
from lamina.api.json_wire import JsonApi, is_json_request, json_error_response
from lamina.api.observability import DATA_PLANE, AuditNote, ObservabilityApi, claimed_key
from lamina.api.queues import PREFIX as QUEUES_PREFIX, QueueApi
from lamina.api.sigv4 import SigV4Verifier
from lamina.api.wire import (
    Router,
    WireRequest,
    WireResponse,
    build_response,
    load_service_model,
    parse_input,
)
from lamina.clock import Clock
from lamina.errors import (
    EntityTooLarge,
    InternalError,
    LaminaError,
    SignatureMismatch,
    UnknownOperation,
    UnsupportedOperation,
)
from lamina.ids import FunctionRef

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ASYNC_STATS = re.compile(r"^/lamina/functions/(?P<name>[^/]+)/async$")
MAX_REQUEST_BYTES = 70_167_211  # AWS's CreateFunction request cap: the largest any call may be


class LambdaApi:
    """Serves the Lambda REST API and Lamina's own small endpoints on one port."""

    def __init__(
        self,
        services: Services,
        verifier: SigV4Verifier,
        clock: Clock,
        observability: ObservabilityApi | None = None,
    ) -> None:
        self._services = services
        self._observability = observability
        self._verifier = verifier
        self._clock = clock
        self._router = Router(load_service_model("lambda"))
        self._logs_api = JsonApi("logs", LOGS_HANDLERS, services)
        self._queue_api = QueueApi(services.queues, clock.time)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        note = AuditNote()  # filled in for control-plane calls
        try:
            response = await self._handle(scope, receive, request_id, note)
        except LaminaError as error:
            response = _protocol_error(scope, error)
        except Exception as error:
            log.exception("request %s failed", request_id)
            response = _protocol_error(
                scope, InternalError(f"Internal error: {type(error).__name__}")
            )
        response.headers["x-amzn-RequestId"] = request_id
        if note.operation is not None and self._observability is not None:
            await self._audit(note, scope, response, request_id)  # on disk before the answer
        await _send(send, response)

    async def _audit(
        self, note: AuditNote, scope: Scope, response: WireResponse, request_id: str
    ) -> None:
        assert self._observability is not None
        try:
            await self._observability.record(note, scope.get("client"), response, request_id)
        except Exception:
            log.exception("cannot write the audit record of request %s", request_id)

    async def _handle(
        self, scope: Scope, receive: Receive, request_id: str, note: AuditNote
    ) -> WireResponse:
        path: str = scope["raw_path"].decode("latin-1").split("?", 1)[0]
        raw_query: str = scope["query_string"].decode("latin-1")
        if path.startswith("/_lamina/"):
            return await self._lamina_endpoint(path, raw_query)
        if path == "/metrics" and self._observability is not None:
            return await self._observability.scrape()  # unauthenticated, like /_lamina/health
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive, headers)
        request = WireRequest(
            scope["method"], path, parse_qsl(raw_query, keep_blank_values=True), headers, body
        )
        try:
            identity = self._verifier.verify(
                scope["method"], path, raw_query, headers, body, self._clock.now()
            )
            is_logs = identity.service == "logs" and "x-amz-target" in headers
            if identity.service != "lambda" and not is_logs:
                raise SignatureMismatch(
                    "Credential should be scoped to correct service: 'lambda'. "
                )
        except LaminaError:
            self._note_refused(request, note)
            raise
        agent = headers.get("user-agent", "")
        if is_logs:  # CloudWatch Logs (awsJson1_1) on the same endpoint
            operation_name = "logs:" + headers["x-amz-target"].rpartition(".")[2]
            note.control_call(operation_name, identity.access_key, identity.region, True, agent)
            note.params = _json_object(body)
            base_url = f"http://{headers.get('host', '127.0.0.1')}"
            return await self._logs_api.handle(headers, body, identity.region, request_id, base_url)
        if path.startswith("/lamina/"):
            queue_operation = _queue_operation(request.method, path)
            if queue_operation is not None:  # the built-in queues are control plane too
                note.control_call(
                    queue_operation, identity.access_key, identity.region, True, agent
                )
                note.params = {"Path": path, **_json_object(body)}
            return await self._lamina_api(request, raw_query, identity.region)
        operation, labels = self._router.resolve(request)
        if operation.name not in DATA_PLANE:
            note.control_call(
                operation.name,
                identity.access_key,
                identity.region,
                True,
                headers.get("user-agent", ""),
            )
            note.params = labels
        handler = HANDLERS.get(operation.name)
        if handler is None:
            raise UnsupportedOperation(operation.name)
        params = parse_input(operation, labels, request)
        note.params = params
        host = headers.get("host", "127.0.0.1")
        call = Call(self._services, params, identity.region, f"http://{host}", request_id)
        return build_response(operation, await handler(call))

    def _note_refused(self, request: WireRequest, note: AuditNote) -> None:
        """A control-plane call whose signature failed is recorded too, under the key it
        claimed, if its path names an operation."""
        if request.path.startswith("/lamina/"):
            return
        try:
            operation, labels = self._router.resolve(request)
        except LaminaError:
            return
        key, region = claimed_key(request.headers)
        agent = request.headers.get("user-agent", "")
        note.control_call(operation.name, key or "", region or "", False, agent)
        note.params = labels

    async def _lamina_api(self, request: WireRequest, raw_query: str, region: str) -> WireResponse:
        """Lamina's own signed endpoints: built-in queues, async queue statistics, metrics
        time series and the audit trail."""
        path = request.path
        if self._observability is not None:
            served = await self._observability.handle(request, raw_query, region)
            if served is not None:
                return served
        if path == QUEUES_PREFIX or path.startswith(QUEUES_PREFIX + "/"):
            return await self._queue_api.handle(
                request.method, path, raw_query, request.body, region
            )
        stats = _ASYNC_STATS.match(path)
        if stats is not None and request.method == "GET":
            name = unquote(stats["name"])  # any other name is no function: 404 below
            found = self._services.events.stats(region, name)
            if not (found.pending or found.in_flight or found.outcomes):
                # Nothing known of it: a function that is not there is 404, as in every call
                # naming one (a deleted function's counts stay readable: its events ended).
                await self._services.functions.get(
                    FunctionRef(region, self._services.account_id, name)
                )
            return WireResponse(
                200, {"Content-Type": "application/json"}, orjson.dumps(asdict(found))
            )
        raise UnknownOperation(f"No Lamina endpoint at {request.method} {path}.")

    async def _lamina_endpoint(self, path: str, raw_query: str) -> WireResponse:
        if path == "/_lamina/health":
            return WireResponse(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')
        if path.startswith(PATH_PREFIX):
            query = dict(parse_qsl(raw_query))
            region, name, digest = self._services.code_links.verify(
                path, query.get("Expires", ""), query.get("Signature", "")
            )
            if self._services.code_links.is_layer_link(path):
                data = await self._services.layers.code_of(region, name, digest)
            else:
                data = await self._services.functions.code_of(region, name, digest)
            return WireResponse(200, {"Content-Type": "application/zip"}, data)
        return _error_response(UnknownOperation(f"No Lamina endpoint at {path}."))


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise EntityTooLarge(
            f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the CreateFunction "
            "operation"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise EntityTooLarge(
                f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the CreateFunction "
                "operation"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _protocol_error(scope: Scope, error: LaminaError) -> WireResponse:
    """The error in the shape of the request's protocol: JSON (X-Amz-Target) or REST."""
    if is_json_request(scope["headers"]):
        return json_error_response(error)
    return _error_response(error)


_QUEUE_OPERATIONS = {
    ("POST", 0): "CreateQueue", ("GET", 0): "ListQueues", ("GET", 1): "GetQueue",
    ("DELETE", 1): "DeleteQueue", ("POST", 2): "SendMessage", ("GET", 2): "GetMessages",
    ("POST", 3): "DrainQueue", ("POST", 4): "DeleteMessages",
}  # fmt: skip


def _queue_operation(method: str, path: str) -> str | None:
    """The audit name of a built-in queue call (`lamina:<Operation>`), or None if not one."""
    if path != QUEUES_PREFIX and not path.startswith(QUEUES_PREFIX + "/"):
        return None
    parts = [p for p in path[len(QUEUES_PREFIX) :].split("/") if p]
    depth = (
        {"messages": 2, "drain": 3, "delete": 4}.get(parts[1], -1)
        if len(parts) == 2
        else len(parts)
    )
    name = _QUEUE_OPERATIONS.get((method, depth))
    return f"lamina:{name}" if name else None


def _json_object(body: bytes) -> dict[str, Any]:
    """A request body's members for the audit record ({} when it is not a JSON object)."""
    try:
        document = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _error_response(error: LaminaError, status: int | None = None) -> WireResponse:
    aws = aws_error_for(error)
    headers = {"x-amzn-ErrorType": aws.code, "Content-Type": "application/json", **error.headers()}
    body = error_body(aws, error.message, error.fields())
    return WireResponse(status or aws.status, headers, body)


async def _send(send: Send, response: WireResponse) -> None:
    # AWS frames every response with Content-Length (never chunked), which is also what a
    # client reads fastest.
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    if response.status not in (204, 304):
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
