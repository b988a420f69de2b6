"""Domain values <-> JSON documents for storage. Field names are ours, not AWS's."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from lamina.model.function import (
    CodeRef,
    FunctionConfig,
    FunctionVersion,
    LoggingConfig,
    State,
    Status,
    UpdateStatus,
)


def encode_version(version: FunctionVersion) -> bytes:
    cfg, st = version.config, version.status
    doc = {
        "version": version.version,
        "last_modified": version.last_modified.isoformat(),
        "revision_id": version.revision_id,
        "source_description": version.source_description,
        "code": {
            "sha256": version.code.sha256_hex,
            "size": version.code.size,
            "unzipped": version.code.unzipped_size,
        },
        "status": {
            "state": st.state.value,
            "state_reason": st.state_reason,
            "state_reason_code": st.state_reason_code,
            "last_update": st.last_update.value if st.last_update else None,
            "last_update_reason": st.last_update_reason,
            "last_update_reason_code": st.last_update_reason_code,
        },
        "config": {
            "runtime": cfg.runtime,
            "handler": cfg.handler,
            "role": cfg.role,
            "description": cfg.description,
            "timeout": cfg.timeout,
            "memory_size": cfg.memory_size,
            "environment": dict(cfg.environment),
            "ephemeral_storage": cfg.ephemeral_storage,
            "architectures": list(cfg.architectures),
            "layers": list(cfg.layers),
            "tracing_mode": cfg.tracing_mode,
            "dead_letter_target": cfg.dead_letter_target,
            "kms_key_arn": cfg.kms_key_arn,
            "logging": {
                "log_format": cfg.logging.log_format,
                "log_group": cfg.logging.log_group,
                "application_log_level": cfg.logging.application_log_level,
                "system_log_level": cfg.logging.system_log_level,
            },
        },
    }
    return orjson.dumps(doc)


@lru_cache(maxsize=32_768)
def decode_version(raw: str) -> FunctionVersion:
    """Decode a stored version. Memoized by content: a document always decodes to the same
    immutable value, and listing thousands of functions then costs a lookup per row."""
    doc: dict[str, Any] = orjson.loads(raw)
    cfg, st, code = doc["config"], doc["status"], doc["code"]
    return FunctionVersion(
        version=doc["version"],
        last_modified=datetime.fromisoformat(doc["last_modified"]),
        revision_id=doc["revision_id"],
        source_description=doc.get("source_description"),
        code=CodeRef(code["sha256"], code["size"], code["unzipped"]),
        status=Status(
            state=State(st["state"]),
            state_reason=st["state_reason"],
            state_reason_code=st["state_reason_code"],
            last_update=UpdateStatus(st["last_update"]) if st["last_update"] else None,
            last_update_reason=st["last_update_reason"],
            last_update_reason_code=st["last_update_reason_code"],
        ),
        config=FunctionConfig(
            runtime=cfg["runtime"],
            handler=cfg["handler"],
            role=cfg["role"],
            description=cfg["description"],
            timeout=cfg["timeout"],
            memory_size=cfg["memory_size"],
            environment=cfg["environment"],
            ephemeral_storage=cfg["ephemeral_storage"],
            architectures=tuple(cfg["architectures"]),
            layers=tuple(cfg["layers"]),
            tracing_mode=cfg["tracing_mode"],
            dead_letter_target=cfg["dead_letter_target"],
            kms_key_arn=cfg["kms_key_arn"],
            logging=LoggingConfig(**cfg["logging"]),
        ),
    )
