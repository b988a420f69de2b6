"""Invoke (RequestResponse and DryRun)."""

from __future__ import annotations

import base64

from lamina.api.context import Call, Handler, Output
from lamina.errors import UnsupportedOperation


async def invoke(call: Call) -> Output:
    params = call.params
    ref = call.function_ref()
    kind = params.get("InvocationType", "RequestResponse")
    invoker = call.services.invoker
    if kind == "DryRun":
        await invoker.check(ref)
        return {"StatusCode": 204}
    if kind == "Event":
        raise UnsupportedOperation("Invoke with InvocationType Event (asynchronous invocation)")
    outcome = await invoker.invoke(
        ref, params.get("Payload", b""), params.get("ClientContext"), call.request_id
    )
    out: Output = {
        "StatusCode": 200,
        "FunctionError": outcome.function_error,
        "ExecutedVersion": outcome.executed_version,
        "Payload": outcome.payload,
    }
    if params.get("LogType") == "Tail":
        out["LogResult"] = base64.b64encode(outcome.log_tail).decode()
    return out


HANDLERS: dict[str, Handler] = {"Invoke": invoke}
