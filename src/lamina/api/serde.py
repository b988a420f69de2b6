"""Domain values -> Lambda wire shapes (PascalCase lives here and in handlers only)."""

from __future__ import annotations

import base64
from datetime import datetime
from functools import lru_cache
from typing import Any

from lamina.ids import function_arn
from lamina.model.function import LATEST, Function, FunctionConfig, FunctionVersion


def aws_timestamp(moment: datetime) -> str:
    """AWS's string timestamps: `2019-09-24T18:20:35.054+0000`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def code_sha256(hex_digest: str) -> str:
    """CodeSha256 on the wire is base64 of the SHA-256 of the zip."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def function_configuration(
    function: Function,
    account: str,
    version: FunctionVersion | None = None,
    *,
    in_list: bool = False,
) -> dict[str, Any]:
    """FunctionConfiguration (control-api.md §4.1) of `version` (default `$LATEST`).

    Lists omit the state fields, as AWS does.
    """
    return _configuration(
        function.region, function.name, account, version or function.latest, in_list
    )


@lru_cache(maxsize=32_768)
def _configuration(
    region: str, name: str, account: str, version: FunctionVersion, in_list: bool
) -> dict[str, Any]:
    # Memoized per immutable version value; callers must treat the result as read-only.
    cfg = version.config
    qualifier = None if version.version == LATEST else version.version
    out: dict[str, Any] = {
        "FunctionName": name,
        "FunctionArn": function_arn(region, account, name, qualifier),
        "Runtime": cfg.runtime,
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": version.code.size,
        "Description": cfg.description,
        "Timeout": cfg.timeout,
        "MemorySize": cfg.memory_size,
        "LastModified": aws_timestamp(version.last_modified),
        "CodeSha256": code_sha256(version.code.sha256_hex),
        "Version": version.version,
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": version.revision_id,
        "PackageType": "Zip",
        "Architectures": list(cfg.architectures),
        "EphemeralStorage": {"Size": cfg.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": _logging(name, cfg),
    }
    if cfg.environment:
        out["Environment"] = {"Variables": dict(cfg.environment)}
    if cfg.layers:
        out["Layers"] = [{"Arn": arn, "CodeSize": 0} for arn in cfg.layers]
    if cfg.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": cfg.dead_letter_target}
    if cfg.kms_key_arn:
        out["KMSKeyArn"] = cfg.kms_key_arn
    if not in_list:
        out.update(_status(version, region))
    return out


def _logging(name: str, cfg: FunctionConfig) -> dict[str, Any]:
    logging = cfg.logging
    out: dict[str, Any] = {
        "LogFormat": logging.log_format,
        "LogGroup": logging.log_group or f"/aws/lambda/{name}",
    }
    if logging.application_log_level:
        out["ApplicationLogLevel"] = logging.application_log_level
    if logging.system_log_level:
        out["SystemLogLevel"] = logging.system_log_level
    return out


def _status(version: FunctionVersion, region: str) -> dict[str, Any]:
    status = version.status
    out: dict[str, Any] = {
        "State": status.state.value,
        "StateReason": status.state_reason,
        "StateReasonCode": status.state_reason_code,
        "LastUpdateStatus": status.last_update.value if status.last_update else None,
        "LastUpdateStatusReason": status.last_update_reason,
        "LastUpdateStatusReasonCode": status.last_update_reason_code,
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": f"arn:aws:lambda:{region}::runtime:lamina-{version.config.runtime}"
        },
    }
    return {k: v for k, v in out.items() if v is not None}
