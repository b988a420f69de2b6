"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lamina.api.context import Call, Handler, Output
from lamina.api.serde import function_configuration
from lamina.control.functions import NewFunction
from lamina.control.paging import offset_page
from lamina.control.validation import check_runtime
from lamina.errors import InvalidParameter
from lamina.ids import FunctionRef, function_arn
from lamina.model.alias import is_alias_name
from lamina.model.function import (
    LATEST,
    Function,
    FunctionConfig,
    FunctionVersion,
    LoggingConfig,
)

# Configuration members Lamina stores as given (control/validation.py checks them).
_UNSUPPORTED = {
    "FileSystemConfigs": "file systems (EFS)",
    "ImageConfig": "container images",
    "CodeSigningConfigArn": "code signing",
    "CapacityProviderConfig": "Managed Instances capacity providers",
    "DurableConfig": "durable functions",
    "TenancyConfig": "tenant isolation",
}


def _reject_unsupported(params: dict[str, Any]) -> None:
    for member, what in _UNSUPPORTED.items():
        if params.get(member):
            raise InvalidParameter(f"Lamina does not support {what} ({member}).")
    vpc = params.get("VpcConfig") or {}
    if vpc.get("SubnetIds") or vpc.get("SecurityGroupIds"):
        raise InvalidParameter("Lamina does not support VPC attachment (VpcConfig).")
    if params.get("PackageType", "Zip") != "Zip":
        raise InvalidParameter("Lamina supports only PackageType Zip.")
    snap = params.get("SnapStart") or {}
    if snap.get("ApplyOn", "None") != "None":
        raise InvalidParameter("Lamina does not support SnapStart.")


def _config_fields(params: dict[str, Any]) -> dict[str, Any]:
    """Map configuration members present in the request to FunctionConfig fields."""
    fields: dict[str, Any] = {}
    simple = {
        "Runtime": "runtime",
        "Handler": "handler",
        "Role": "role",
        "Description": "description",
        "Timeout": "timeout",
        "MemorySize": "memory_size",
        "KMSKeyArn": "kms_key_arn",
    }
    for member, name in simple.items():
        if member in params:
            fields[name] = params[member]
    if "Runtime" in params:
        check_runtime(params["Runtime"])
    if "Environment" in params:
        fields["environment"] = params["Environment"].get("Variables", {})
    if "EphemeralStorage" in params:
        fields["ephemeral_storage"] = params["EphemeralStorage"]["Size"]
    if "Architectures" in params:
        fields["architectures"] = tuple(params["Architectures"])
    if "Layers" in params:
        fields["layers"] = tuple(params["Layers"])
    if "TracingConfig" in params:
        fields["tracing_mode"] = params["TracingConfig"].get("Mode", "PassThrough")
    if "DeadLetterConfig" in params:
        fields["dead_letter_target"] = params["DeadLetterConfig"].get("TargetArn") or None
    if "LoggingConfig" in params:
        fields["logging"] = _logging(params["LoggingConfig"])
    return fields


def _logging(raw: dict[str, Any]) -> LoggingConfig:
    return LoggingConfig(
        log_format=raw.get("LogFormat", "Text"),
        log_group=raw.get("LogGroup"),
        application_log_level=raw.get("ApplicationLogLevel"),
        system_log_level=raw.get("SystemLogLevel"),
    )


def _zip_file(code: dict[str, Any]) -> bytes:
    if "ZipFile" in code:
        return bytes(code["ZipFile"])
    if code.get("S3Bucket") or code.get("S3Key"):
        raise InvalidParameter(
            "Lamina has no S3: upload the deployment package directly with ZipFile."
        )
    if code.get("ImageUri"):
        raise InvalidParameter("Lamina supports only PackageType Zip, not ImageUri.")
    raise InvalidParameter("Code must contain ZipFile.")


def _check_dead_letter(call: Call, fields: dict[str, Any]) -> None:
    target = fields.get("dead_letter_target")
    if target:
        call.services.event_configs.check_dead_letter_target(call.function_ref(), target)


async def create_function(call: Call) -> Output:
    params = call.params
    _reject_unsupported(params)
    fields = _config_fields(params)
    _check_dead_letter(call, fields)
    if "runtime" not in fields or "handler" not in fields:
        raise InvalidParameter(
            "Runtime and Handler are mandatory parameters for functions created with Zip packages."
        )
    new = NewFunction(
        name=call.function_ref().name,
        config=FunctionConfig(**fields),
        zip_file=_zip_file(params["Code"]),
        tags=params.get("Tags", {}),
    )
    functions = call.services.functions
    function = await functions.create(call.region, new)
    account = call.services.account_id
    if params.get("Publish"):
        version = await functions.publish(call.function_ref())
        return await _sized(call, _published_on_create(function, account, version))
    return await _sized(call, function_configuration(function, account))


_VERSION_FIELDS = ("Version", "RevisionId", "LastModified")


def _published_on_create(function: Function, account: str, version: FunctionVersion) -> Output:
    """CreateFunction with Publish answers with `$LATEST` as created (Pending, the unqualified
    ARN, no LastUpdateStatus) under version 1's number, RevisionId and time (AWS, as recorded
    in LocalStack's snapshot of TestLambdaVersions::test_publish_version_on_create)."""
    published = function_configuration(function, account, version)
    created = function_configuration(function, account)
    return {**created, **{key: published[key] for key in _VERSION_FIELDS}}


async def _sized(call: Call, config: Output) -> Output:
    """`Layers` with each version's CodeSize (serde knows only the ARNs); the configuration
    dictionaries are memoized, so this makes a new one."""
    layers = config.get("Layers")
    if not layers:
        return config
    arns = [layer["Arn"] for layer in layers]
    return {**config, "Layers": await call.services.layers.sizes(call.region, arns)}


async def _described(
    call: Call, function: Function, version: FunctionVersion, ref: FunctionRef
) -> Output:
    """Through an alias AWS describes the version it points to under the alias's ARN, and an
    explicit `$LATEST` under `...:$LATEST` (LocalStack's AWS-validated map_config_out: the ARN
    is qualified whenever a qualifier was given)."""
    config = await _sized(call, function_configuration(function, ref.account, version))
    if ref.qualifier != LATEST and not is_alias_name(ref.qualifier):
        return config
    return {**config, "FunctionArn": function_arn(ref.region, ref.account, ref.name, ref.qualifier)}


async def get_function(call: Call) -> Output:
    services, ref = call.services, call.function_ref()
    function, version = await services.functions.describe(ref)
    location = services.code_links.url(
        call.base_url, function.region, function.name, version.code.sha256_hex
    )
    out: Output = {
        "Configuration": await _described(call, function, version, ref),
        "Code": {"RepositoryType": "S3", "Location": location},
    }
    if function.tags:
        out["Tags"] = dict(function.tags)
    reserved = services.concurrency.reserved(function.region, function.name)
    if reserved is not None:  # only when set (control-api.md §4.4)
        out["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return out


async def get_function_configuration(call: Call) -> Output:
    ref = call.function_ref()
    function, version = await call.services.functions.describe(ref)
    return await _described(call, function, version, ref)


async def list_functions(call: Call) -> Output:
    account = call.services.account_id
    marker, max_items = call.params.get("Marker"), call.params.get("MaxItems")
    if call.params.get("FunctionVersion") == "ALL":
        # Published versions too, each under its qualified ARN, `$LATEST` included (the API
        # reference; LocalStack's list_functions: return_qualified_arn for ALL).
        every = await call.services.functions.list_all_versions_page(call.region, marker, max_items)
        listed = []
        for function, version in every.entries:
            config = function_configuration(function, account, version, in_list=True)
            arn = function_arn(function.region, account, function.name, version.version)
            listed.append(await _sized(call, {**config, "FunctionArn": arn}))
        return {"Functions": listed, "NextMarker": every.next_marker}
    page = await call.services.functions.list_page(call.region, marker, max_items)
    return {
        "Functions": [
            await _sized(call, function_configuration(f, account, in_list=True))
            for f in page.functions
        ],
        "NextMarker": page.next_marker,
    }


async def update_function_code(call: Call) -> Output:
    params = call.params
    if "Architectures" in params:
        raise InvalidParameter("Lamina runs functions on the host architecture only.")
    functions, ref = call.services.functions, call.function_ref()
    dry_run = bool(params.get("DryRun"))
    function = await functions.update_code(
        ref, _zip_file(params), params.get("RevisionId"), dry_run
    )
    if params.get("Publish") and not dry_run:
        version = await functions.publish(ref, with_update=True)
        account = call.services.account_id
        return await _sized(call, function_configuration(function, account, version))
    return await _sized(call, function_configuration(function, call.services.account_id))


async def update_function_configuration(call: Call) -> Output:
    _reject_unsupported(call.params)
    fields = _config_fields(call.params)
    _check_dead_letter(call, fields)
    function = await call.services.functions.update_configuration(
        call.function_ref(), fields, call.params.get("RevisionId")
    )
    return await _sized(call, function_configuration(function, call.services.account_id))


async def delete_function(call: Call) -> Output:
    await call.services.functions.delete(call.function_ref())
    return {"StatusCode": 204}  # recorded AWS answers 204 with no body


async def publish_version(call: Call) -> Output:
    params = call.params
    sha = params.get("CodeSha256")
    function = await call.services.functions.get(call.function_ref())
    version = await call.services.functions.publish(
        call.function_ref(),
        code_sha256_hex=_hex_sha256(sha) if sha is not None else None,
        description=params.get("Description"),
        revision_id=params.get("RevisionId"),
    )
    return await _sized(call, function_configuration(function, call.services.account_id, version))


def _hex_sha256(wire: str) -> str:
    """CodeSha256 arrives as base64; compare as hex. Garbage can never match."""
    try:
        return base64.b64decode(wire, validate=True).hex()
    except (binascii.Error, ValueError):
        return wire


async def list_versions_by_function(call: Call) -> Output:
    ref = call.function_ref()
    function = await call.services.functions.get(ref)
    versions = await call.services.functions.versions(ref)
    page, next_marker = offset_page(
        versions, call.params.get("Marker"), call.params.get("MaxItems")
    )
    account = call.services.account_id
    return {
        "Versions": [await _listed_version(call, function, account, v) for v in page],
        "NextMarker": next_marker,
    }


async def _listed_version(
    call: Call, function: Function, account: str, version: FunctionVersion
) -> Output:
    config = await _sized(call, function_configuration(function, account, version, in_list=True))
    if version.version != LATEST:
        return config
    # AWS lists $LATEST under its qualified ARN (awscli's list-versions-by-function example).
    return {**config, "FunctionArn": f"{config['FunctionArn']}:{LATEST}"}


HANDLERS: dict[str, Handler] = {
    "PublishVersion": publish_version,
    "ListVersionsByFunction": list_versions_by_function,
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionConfiguration": get_function_configuration,
    "ListFunctions": list_functions,
    "UpdateFunctionCode": update_function_code,
    "UpdateFunctionConfiguration": update_function_configuration,
    "DeleteFunction": delete_function,
}
