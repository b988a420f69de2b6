"""Where an async event's outcome goes: the destination record and the dead letter
(event-formats.md §9), as steps that commit together with the event's removal."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from lamina.control.invoke import MAX_ASYNC_PAYLOAD
from lamina.control.queues import QueueService
from lamina.errors import LaminaError
from lamina.ids import FunctionRef, function_arn, parse_function_ref
from lamina.model.event import AsyncEvent, Outcome
from lamina.store import events, queues as queue_rows
from lamina.store.database import Database

DLQ_MESSAGE_BYTES = 1024  # ErrorMessage carries the first 1 KB of the error message


def _json_or_text(raw: bytes) -> Any:
    """Payloads are embedded as JSON values when they are JSON (event-formats.md §9.1)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def record(event: AsyncEvent, condition: str, account: str, now: float) -> bytes:
    """The invocation record sent to OnSuccess / OnFailure destinations."""
    last = event.last
    version = last.executed_version if last else (event.qualifier or "$LATEST")
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    out: dict[str, Any] = {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": event.id,
            # version-qualified even for unqualified invokes (recorded, §9.1)
            "functionArn": function_arn(event.region, account, event.name, version),
            "condition": condition,
            "approximateInvokeCount": event.invokes,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if last is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": last.executed_version}
        if last.function_error:
            context["functionError"] = last.function_error
        out["responseContext"] = context
        out["responsePayload"] = _json_or_text(last.payload)
    return orjson.dumps(out)


def dead_letter_attributes(event: AsyncEvent) -> dict[str, Any]:
    """SQS message attributes AWS sets on a dead letter (event-formats.md §9.2)."""
    message = ""
    if event.last is not None:
        parsed = _json_or_text(event.last.payload)
        message = str(parsed.get("errorMessage", "")) if isinstance(parsed, dict) else str(parsed)
    return {
        "RequestID": {"DataType": "String", "StringValue": event.id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": message[:DLQ_MESSAGE_BYTES]},
    }


class Deliveries:
    """Builds the database steps that deliver to a target ARN."""

    def __init__(self, queues: QueueService, account: str) -> None:
        self._queues = queues
        self._account = account

    def step(
        self,
        event: AsyncEvent,
        target: str,
        body: bytes,
        attributes: dict[str, Any],
        delivered: Outcome,
        now: float,
        follow_ups: list[AsyncEvent],
    ) -> Callable[[Database], Outcome]:
        """A step delivering `body` to `target`; it returns `delivered` or DELIVERY_FAILED
        (the target is gone or not one Lamina knows, or the record is larger than the target
        takes) and never raises for that. A function target gets a new async event (stored in
        the same transaction, then in `follow_ups` for the dispatcher to schedule); like any
        Event invoke it takes at most MAX_ASYNC_PAYLOAD, a larger record is not delivered."""
        queue = self._queues.parse_arn(target)
        function = self._function(event, target)

        def deliver(db: Database) -> Outcome:
            if queue is not None:
                if not queue_rows.exists(db, queue.region, queue.name):
                    return Outcome.DELIVERY_FAILED
                message = self._queues.message(body.decode("utf-8", "replace"), attributes)
                queue_rows.send(db, queue.region, queue.name, message)
                return delivered
            if function is not None and len(body) <= MAX_ASYNC_PAYLOAD:
                found = db.one(
                    "SELECT 1 FROM functions WHERE region = ? AND name = ?",
                    (function.region, function.name),
                )
                if found is None:
                    return Outcome.DELIVERY_FAILED
                follow_up = AsyncEvent(
                    str(uuid.uuid4()),
                    function.region,
                    function.name,
                    function.qualifier,
                    body,
                    accepted_at=now,
                    due_at=now,
                )
                events.insert(db, follow_up)
                follow_ups.append(follow_up)
                return delivered
            return Outcome.DELIVERY_FAILED

        return deliver

    def _function(self, event: AsyncEvent, target: str) -> FunctionRef | None:
        if not target.startswith("arn:aws:lambda:"):
            return None
        try:
            return parse_function_ref(target, event.region, self._account)
        except LaminaError:
            return None
