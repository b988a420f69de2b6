"""Invoke (RequestResponse, Event and DryRun)."""

from __future__ import annotations

import base64

from lamina.api.context import Call, Handler, Output


async def invoke(call: Call) -> Output:
    params = call.params
    ref = call.function_ref()
    kind = params.get("InvocationType", "RequestResponse")
    invoker = call.services.invoker
    if kind == "DryRun":
        await invoker.check(ref)
        return {"StatusCode": 204}
    if kind == "Event":
        # 202 only once the event is durably stored; its request id is this call's (AWS).
        await call.services.events.accept(ref, params.get("Payload", b""), call.request_id)
        return {"StatusCode": 202}
    tail = params.get("LogType") == "Tail"
    outcome = await invoker.invoke(
        ref, params.get("Payload", b""), params.get("ClientContext"), call.request_id, tail
    )
    out: Output = {
        "StatusCode": 200,
        "FunctionError": outcome.function_error,
        "ExecutedVersion": outcome.executed_version,
        "Payload": outcome.payload,
    }
    if tail:
        out["LogResult"] = base64.b64encode(outcome.log_tail).decode()
    return out


HANDLERS: dict[str, Handler] = {"Invoke": invoke}
