"""PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions,
DeleteLayerVersion, AddLayerVersionPermission, RemoveLayerVersionPermission,
GetLayerVersionPolicy."""

from __future__ import annotations

from typing import Any

import orjson

from lamina.api.context import Call, Handler, Output
from lamina.api.serde import aws_timestamp, code_sha256
from lamina.control.layers import NewLayerVersion
from lamina.errors import InvalidParameter
from lamina.model.layer import LayerStatement, LayerVersion


def _listed(layer: LayerVersion, account: str) -> Output:
    """LayerVersionsListItem."""
    out: Output = {
        "LayerVersionArn": layer.arn(account),
        "Version": layer.version,
        "Description": layer.description,
        "CreatedDate": aws_timestamp(layer.created),
        "CompatibleRuntimes": list(layer.compatible_runtimes),
        "CompatibleArchitectures": list(layer.compatible_architectures),
    }
    if layer.license_info is not None:
        out["LicenseInfo"] = layer.license_info
    return out


def _described(call: Call, layer: LayerVersion) -> Output:
    """GetLayerVersionResponse / PublishLayerVersionResponse, with a working 10-minute link."""
    account = call.services.account_id
    location = call.services.code_links.url(
        call.base_url, layer.region, layer.name, layer.code.sha256_hex, layer=True
    )
    listed = _listed(layer, account)
    return {
        **listed,
        "Content": {
            "Location": location,
            "CodeSha256": code_sha256(layer.code.sha256_hex),
            "CodeSize": layer.code.size,
        },
        "LayerArn": layer.arn(account).rsplit(":", 1)[0],
    }


def _zip_file(content: dict[str, Any]) -> bytes:
    if "ZipFile" in content:
        return bytes(content["ZipFile"])
    if content.get("S3Bucket") or content.get("S3Key"):
        raise InvalidParameter("Lamina has no S3: upload the layer archive directly with ZipFile.")
    raise InvalidParameter("Content must contain ZipFile.")


async def publish_layer_version(call: Call) -> Output:
    params = call.params
    new = NewLayerVersion(
        name=params["LayerName"],
        zip_file=_zip_file(params["Content"]),
        description=params.get("Description", ""),
        compatible_runtimes=tuple(params.get("CompatibleRuntimes", ())),
        compatible_architectures=tuple(params.get("CompatibleArchitectures", ())),
        license_info=params.get("LicenseInfo"),
    )
    layer = await call.services.layers.publish(call.region, new)
    return _described(call, layer)


async def get_layer_version(call: Call) -> Output:
    params = call.params
    layer = await call.services.layers.get(
        call.region, params["LayerName"], params["VersionNumber"]
    )
    return _described(call, layer)


async def get_layer_version_by_arn(call: Call) -> Output:
    layer = await call.services.layers.get_by_arn(call.region, call.params["Arn"])
    return _described(call, layer)


async def list_layers(call: Call) -> Output:
    params = call.params
    page = await call.services.layers.list_layers(
        call.region,
        params.get("CompatibleRuntime"),
        params.get("CompatibleArchitecture"),
        params.get("Marker"),
        params.get("MaxItems"),
    )
    account = call.services.account_id
    layers = [
        {
            "LayerName": layer.name,
            "LayerArn": layer.arn(account).rsplit(":", 1)[0],
            "LatestMatchingVersion": _listed(layer, account),
        }
        for layer in page.versions
    ]
    return {"Layers": layers, "NextMarker": page.next_marker}


async def list_layer_versions(call: Call) -> Output:
    params = call.params
    page = await call.services.layers.list_versions(
        call.region,
        params["LayerName"],
        params.get("CompatibleRuntime"),
        params.get("CompatibleArchitecture"),
        params.get("Marker"),
        params.get("MaxItems"),
    )
    account = call.services.account_id
    return {
        "LayerVersions": [_listed(layer, account) for layer in page.versions],
        "NextMarker": page.next_marker,
    }


async def delete_layer_version(call: Call) -> Output:
    params = call.params
    await call.services.layers.delete(call.region, params["LayerName"], params["VersionNumber"])
    return {}


async def add_layer_version_permission(call: Call) -> Output:
    params = call.params
    statement = LayerStatement(
        params["StatementId"],
        params["Action"],
        params["Principal"],
        params.get("OrganizationId"),
    )
    rendered, revision = await call.services.layers.add_permission(
        call.region,
        params["LayerName"],
        params["VersionNumber"],
        statement,
        params.get("RevisionId"),
    )
    return {"Statement": orjson.dumps(rendered).decode(), "RevisionId": revision}


async def remove_layer_version_permission(call: Call) -> Output:
    params = call.params
    await call.services.layers.remove_permission(
        call.region,
        params["LayerName"],
        params["VersionNumber"],
        params["StatementId"],
        params.get("RevisionId"),
    )
    return {}


async def get_layer_version_policy(call: Call) -> Output:
    params = call.params
    document, revision = await call.services.layers.policy(
        call.region, params["LayerName"], params["VersionNumber"]
    )
    return {"Policy": orjson.dumps(document).decode(), "RevisionId": revision}


HANDLERS: dict[str, Handler] = {
    "PublishLayerVersion": publish_layer_version,
    "GetLayerVersion": get_layer_version,
    "GetLayerVersionByArn": get_layer_version_by_arn,
    "ListLayers": list_layers,
    "ListLayerVersions": list_layer_versions,
    "DeleteLayerVersion": delete_layer_version,
    "AddLayerVersionPermission": add_layer_version_permission,
    "RemoveLayerVersionPermission": remove_layer_version_permission,
    "GetLayerVersionPolicy": get_layer_version_policy,
}
