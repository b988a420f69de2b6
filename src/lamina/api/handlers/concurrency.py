"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency and the
provisioned concurrency configs (Put/Get/Delete/ListProvisionedConcurrencyConfigs)."""

from __future__ import annotations

from lamina.api.context import Call, Handler, Output
from lamina.api.serde import aws_timestamp
from lamina.control.provisioned import ProvisionedConfig
from lamina.ids import function_arn


async def put_function_concurrency(call: Call) -> Output:
    reserved = await call.services.concurrency.put_reserved(
        call.function_ref(), call.params["ReservedConcurrentExecutions"]
    )
    return {"ReservedConcurrentExecutions": reserved}


async def get_function_concurrency(call: Call) -> Output:
    reserved = await call.services.concurrency.get_reserved(call.function_ref())
    return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}


async def delete_function_concurrency(call: Call) -> Output:
    await call.services.concurrency.delete_reserved(call.function_ref())
    return {}


async def put_provisioned_concurrency_config(call: Call) -> Output:
    config = await call.services.provisioned.put(
        call.function_ref(), call.params["ProvisionedConcurrentExecutions"]
    )
    return _config(config)


async def get_provisioned_concurrency_config(call: Call) -> Output:
    return _config(await call.services.provisioned.get(call.function_ref()))


async def delete_provisioned_concurrency_config(call: Call) -> Output:
    await call.services.provisioned.delete(call.function_ref())
    return {}


async def list_provisioned_concurrency_configs(call: Call) -> Output:
    ref = call.function_ref()
    page = await call.services.provisioned.list_page(
        ref, call.params.get("Marker"), call.params.get("MaxItems")
    )
    account = call.services.account_id
    return {
        "ProvisionedConcurrencyConfigs": [
            {"FunctionArn": function_arn(ref.region, account, ref.name, c.qualifier), **_config(c)}
            for c in page.configs
        ],
        "NextMarker": page.next_marker,
    }


def _config(config: ProvisionedConfig) -> Output:
    out: Output = {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": config.available,
        "AllocatedProvisionedConcurrentExecutions": config.allocated,
        "Status": config.status,
        "LastModified": aws_timestamp(config.last_modified),
    }
    if config.reason is not None:
        out["StatusReason"] = config.reason
    return out


HANDLERS: dict[str, Handler] = {
    "PutFunctionConcurrency": put_function_concurrency,
    "GetFunctionConcurrency": get_function_concurrency,
    "DeleteFunctionConcurrency": delete_function_concurrency,
    "PutProvisionedConcurrencyConfig": put_provisioned_concurrency_config,
    "GetProvisionedConcurrencyConfig": get_provisioned_concurrency_config,
    "DeleteProvisionedConcurrencyConfig": delete_provisioned_concurrency_config,
    "ListProvisionedConcurrencyConfigs": list_provisioned_concurrency_configs,
}
