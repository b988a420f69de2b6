"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases (control-api.md §4.13)."""

from __future__ import annotations

from typing import Any

from lamina.api.context import Call, Handler, Output
from lamina.control.aliases import AliasChanges
from lamina.ids import function_arn
from lamina.model.alias import Alias


def alias_configuration(alias: Alias, account: str) -> Output:
    """AliasConfiguration; RoutingConfig only when the alias splits traffic."""
    out: Output = {
        "AliasArn": function_arn(alias.region, account, alias.function, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def _weights(params: dict[str, Any]) -> dict[str, float] | None:
    """None when RoutingConfig is absent; {} (no routing) when it is given empty."""
    if "RoutingConfig" not in params:
        return None
    return dict(params["RoutingConfig"].get("AdditionalVersionWeights") or {})


async def create_alias(call: Call) -> Output:
    params = call.params
    alias = await call.services.aliases.create(
        call.function_ref(),
        params["Name"],
        params["FunctionVersion"],
        params.get("Description"),
        _weights(params),
    )
    return alias_configuration(alias, call.services.account_id)


async def get_alias(call: Call) -> Output:
    alias = await call.services.aliases.get(call.function_ref(), call.params["Name"])
    return alias_configuration(alias, call.services.account_id)


async def update_alias(call: Call) -> Output:
    params = call.params
    changes = AliasChanges(
        version=params.get("FunctionVersion"),
        description=params.get("Description"),
        weights=_weights(params),
        revision_id=params.get("RevisionId"),
    )
    alias = await call.services.aliases.update(call.function_ref(), params["Name"], changes)
    return alias_configuration(alias, call.services.account_id)


async def delete_alias(call: Call) -> Output:
    await call.services.aliases.delete(call.function_ref(), call.params["Name"])
    return {}  # 204, the model's status


async def list_aliases(call: Call) -> Output:
    params = call.params
    page = await call.services.aliases.list_page(
        call.function_ref(),
        params.get("FunctionVersion"),
        params.get("Marker"),
        params.get("MaxItems"),
    )
    account = call.services.account_id
    return {
        "Aliases": [alias_configuration(alias, account) for alias in page.aliases],
        "NextMarker": page.next_marker,
    }


HANDLERS: dict[str, Handler] = {
    "CreateAlias": create_alias,
    "GetAlias": get_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
}
