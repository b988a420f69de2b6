"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction."""

from __future__ import annotations

from typing import Any

from lamina.api.context import Call, Handler, Output
from lamina.api.serde import function_configuration
from lamina.control.functions import NewFunction
from lamina.control.validation import check_runtime
from lamina.errors import InvalidParameter
from lamina.model.function import FunctionConfig, LoggingConfig

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


async def create_function(call: Call) -> Output:
    params = call.params
    _reject_unsupported(params)
    if params.get("Publish"):
        raise InvalidParameter("Lamina does not publish versions yet (Publish=true).")
    fields = _config_fields(params)
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
    function = await call.services.functions.create(call.region, new)
    return function_configuration(function, call.services.account_id)


async def get_function(call: Call) -> Output:
    services = call.services
    function = await services.functions.get(call.function_ref())
    location = services.code_links.url(
        call.base_url, function.region, function.name, function.latest.code.sha256_hex
    )
    out: Output = {
        "Configuration": function_configuration(function, services.account_id),
        "Code": {"RepositoryType": "S3", "Location": location},
    }
    if function.tags:
        out["Tags"] = dict(function.tags)
    return out


async def get_function_configuration(call: Call) -> Output:
    function = await call.services.functions.get(call.function_ref())
    return function_configuration(function, call.services.account_id)


async def list_functions(call: Call) -> Output:
    page = await call.services.functions.list_page(
        call.region, call.params.get("Marker"), call.params.get("MaxItems")
    )
    account = call.services.account_id
    return {
        "Functions": [function_configuration(f, account, in_list=True) for f in page.functions],
        "NextMarker": page.next_marker,
    }


async def update_function_code(call: Call) -> Output:
    params = call.params
    if params.get("Publish"):
        raise InvalidParameter("Lamina does not publish versions yet (Publish=true).")
    if "Architectures" in params:
        raise InvalidParameter("Lamina runs functions on the host architecture only.")
    function = await call.services.functions.update_code(
        call.function_ref(), _zip_file(params), params.get("RevisionId"), bool(params.get("DryRun"))
    )
    return function_configuration(function, call.services.account_id)


async def update_function_configuration(call: Call) -> Output:
    _reject_unsupported(call.params)
    function = await call.services.functions.update_configuration(
        call.function_ref(), _config_fields(call.params), call.params.get("RevisionId")
    )
    return function_configuration(function, call.services.account_id)


async def delete_function(call: Call) -> Output:
    await call.services.functions.delete(call.function_ref())
    return {"StatusCode": 204}  # recorded AWS answers 204 with no body


HANDLERS: dict[str, Handler] = {
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionConfiguration": get_function_configuration,
    "ListFunctions": list_functions,
    "UpdateFunctionCode": update_function_code,
    "UpdateFunctionConfiguration": update_function_configuration,
    "DeleteFunction": delete_function,
}
