"""Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s)."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output
from lamina.control.paging import offset_page


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
    page, next_marker = offset_page(found, call.params.get("Marker"), call.params.get("MaxItems"))
    return {"FunctionEventInvokeConfigs": list(page), "NextMarker": next_marker}


HANDLERS: dict[str, Handler] = {
    "PutFunctionEventInvokeConfig": put_config,
    "UpdateFunctionEventInvokeConfig": update_config,
    "GetFunctionEventInvokeConfig": get_config,
    "DeleteFunctionEventInvokeConfig": delete_config,
    "ListFunctionEventInvokeConfigs": list_configs,
}
