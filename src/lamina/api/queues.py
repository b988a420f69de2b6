"""The built-in queues' HTTP API (Lamina's own, JSON, SigV4-signed like the Lambda API).

POST   /lamina/queues                      {"Name": n}            -> 201 {"Queue": ...}
GET    /lamina/queues                                             -> {"Queues": [...]}
GET    /lamina/queues/{name}                                      -> {"Queue": ...}
DELETE /lamina/queues/{name}                                      -> 204
POST   /lamina/queues/{name}/messages      {"Body": s, "Attributes": {...}} -> {"MessageId"}
GET    /lamina/queues/{name}/messages?MaxMessages=10  (read, kept) -> {"Messages": [...]}
POST   /lamina/queues/{name}/drain         {"MaxMessages": n} (read and removed)
POST   /lamina/queues/{name}/delete        {"MessageIds": [...]} (after a peek) -> {"Deleted": n}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from lamina.api.wire import WireResponse
from lamina.control.queues import QueueRef, QueueService
from lamina.errors import InvalidParameter, MalformedRequest, UnknownOperation
from lamina.store.queues import Message, QueueInfo

PREFIX = "/lamina/queues"


def _json(status: int, document: Any) -> WireResponse:
    return WireResponse(status, {"Content-Type": "application/json"}, orjson.dumps(document))


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedRequest("The request body must be a JSON object.") from None
    if not isinstance(document, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    return document


def _int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be an integer.") from None


@dataclass(frozen=True, slots=True)
class Request:
    region: str
    name: str | None  # the queue named in the path
    query: dict[str, str]
    body: bytes


Route = Callable[[Request], Awaitable[WireResponse]]


class QueueApi:
    def __init__(self, queues: QueueService, now: Callable[[], float]) -> None:
        self._queues = queues
        self._now = now  # epoch seconds, for message ages
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "queues"): self._list,
            ("POST", "queues"): self._create,
            ("GET", "queue"): self._describe,
            ("DELETE", "queue"): self._delete,
            ("POST", "messages"): self._send,
            ("GET", "messages"): self._peek,
            ("POST", "drain"): self._drain,
            ("POST", "delete"): self._delete_messages,
        }

    async def handle(
        self, method: str, path: str, raw_query: str, body: bytes, region: str
    ) -> WireResponse:
        parts = [unquote(p) for p in path[len(PREFIX) :].split("/") if p]
        kind = {0: "queues", 1: "queue"}.get(len(parts)) or (parts[1] if len(parts) == 2 else "")
        route = self._routes.get((method, kind))
        if route is None:
            raise UnknownOperation(f"No Lamina endpoint at {method} {path}.")
        name = parts[0] if parts else None
        return await route(Request(region, name, dict(parse_qsl(raw_query)), body))

    async def _list(self, request: Request) -> WireResponse:
        listing = self._queues.listing(request.region)
        return _json(200, {"Queues": [self._queue(q) for q in listing]})

    async def _create(self, request: Request) -> WireResponse:
        name = _body(request.body).get("Name")
        if not isinstance(name, str):
            raise InvalidParameter("Name must be a string.")
        ref = self._queues.ref(request.region, name)
        return _json(201, {"Queue": self._queue(await self._queues.create(ref))})

    async def _describe(self, request: Request) -> WireResponse:
        return _json(200, {"Queue": self._queue(self._queues.describe(self._ref(request)))})

    async def _delete(self, request: Request) -> WireResponse:
        await self._queues.delete(self._ref(request))
        return WireResponse(204)

    async def _send(self, request: Request) -> WireResponse:
        document = _body(request.body)
        text = document.get("Body")
        if not isinstance(text, str):
            raise InvalidParameter("Body must be a string.")
        attributes = document.get("Attributes") or {}
        if not isinstance(attributes, dict):
            raise InvalidParameter("Attributes must be an object.")
        sent = await self._queues.send(self._ref(request), text, attributes)
        return _json(200, {"MessageId": sent.message_id})

    async def _peek(self, request: Request) -> WireResponse:
        limit = _int(request.query.get("MaxMessages"), "MaxMessages", 10)
        found = self._queues.peek(self._ref(request), limit)
        return _json(200, {"Messages": [_message(m) for m in found]})

    async def _drain(self, request: Request) -> WireResponse:
        limit = _int(_body(request.body).get("MaxMessages"), "MaxMessages", 10)
        taken = await self._queues.drain(self._ref(request), limit)
        return _json(200, {"Messages": [_message(m) for m in taken]})

    async def _delete_messages(self, request: Request) -> WireResponse:
        ids = _body(request.body).get("MessageIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidParameter("MessageIds must be a list of strings.")
        deleted = await self._queues.delete_messages(self._ref(request), ids)
        return _json(200, {"Deleted": deleted})

    def _ref(self, request: Request) -> QueueRef:
        return self._queues.ref(request.region, request.name or "")

    def _queue(self, info: QueueInfo) -> dict[str, Any]:
        oldest = info.oldest_sent_at
        return {
            "Name": info.name,
            "QueueArn": self._queues.arn(self._queues.ref(info.region, info.name)),
            "CreatedTimestamp": info.created_at,
            "Messages": info.messages,
            "OldestMessageAgeSeconds": None if oldest is None else max(0.0, self._now() - oldest),
        }


def _message(message: Message) -> dict[str, Any]:
    return {
        "MessageId": message.message_id,
        "Body": message.body,
        "Attributes": message.attributes,
        "SentTimestamp": message.sent_at,
    }
