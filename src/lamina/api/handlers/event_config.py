"""Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s)."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output

PAGE_LIMIT = 50


async def put_config(call: Call) -> Output:
    return await call.services.event_configs.put(call.function_ref(), call.params, merge=False)


async def update_config(call: Call) -> Output:
    return await call.services.event_configs.put(call.function_ref(), call.params, merge=True)


async def get_config(call: Call) -> Output:
    return await call.services.event_configs.get(call.function_ref())


async def delete_config(call: Call) -> Output:
    await call.services.event_configs.delete(call.function_ref())
    return {}


async def list_configs(call: Call) -> Output:
    found = await call.services.event_configs.listing(call.function_ref())
    marker = call.params.get("Marker") or "0"
    start = int(marker) if marker.isdigit() else 0
    limit = min(call.params.get("MaxItems") or PAGE_LIMIT, PAGE_LIMIT)
    more = start + limit < len(found)
    return {
        "FunctionEventInvokeConfigs": found[start : start + limit],
        "NextMarker": str(start + limit) if more else None,
    }


HANDLERS: dict[str, Handler] = {
    "PutFunctionEventInvokeConfig": put_config,
    "UpdateFunctionEventInvokeConfig": update_config,
    "GetFunctionEventInvokeConfig": get_config,
    "DeleteFunctionEventInvokeConfig": delete_config,
    "ListFunctionEventInvokeConfigs": list_configs,
}
