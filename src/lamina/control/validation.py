"""Lambda's semantic rules for a function configuration, beyond the service model's constraints.

Each rule raises InvalidParameter with AWS's wording where it is recorded
(../shared/reference/limits.md §1, control-api.md §2.2).
"""

from __future__ import annotations

import orjson

from lamina.errors import InvalidParameter, ValidationFailed
from lamina.model.function import FunctionConfig
from lamina.model.runtime import SUPPORTED_RUNTIMES

MAX_MEMORY_MB = 10_240  # the model allows 32,768 only for Managed Instances
MAX_TIMEOUT_S = 900
MAX_EPHEMERAL_MB = 10_240  # newer models allow 32,768 for Managed Instances only
MAX_ENVIRONMENT_BYTES = 4_096
MAX_LAYERS = 5
MAX_TAGS = 50
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def check_runtime(runtime: str) -> None:
    if runtime not in SUPPORTED_RUNTIMES:
        # AWS's wording for an unknown runtime (recorded), naming the runtimes we run.
        raise InvalidParameter(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(SUPPORTED_RUNTIMES)}] or be a valid ARN"
        )


def check_config(config: FunctionConfig) -> None:
    """Raise InvalidParameter for the first rule `config` breaks."""
    check_runtime(config.runtime)
    if not config.handler:
        raise InvalidParameter("Handler must not be empty for a function of package type Zip.")
    if config.memory_size > MAX_MEMORY_MB:
        raise InvalidParameter(
            f"'MemorySize' value failed to satisfy constraint: Member must have value less than "
            f"or equal to {MAX_MEMORY_MB}"
        )
    if config.timeout > MAX_TIMEOUT_S:
        raise InvalidParameter(
            f"'Timeout' value failed to satisfy constraint: Member must have value less than or "
            f"equal to {MAX_TIMEOUT_S}"
        )
    if config.ephemeral_storage > MAX_EPHEMERAL_MB:
        # AWS checks this as a model constraint (EphemeralStorageSize max 10240).
        raise ValidationFailed(
            [
                f"Value '{config.ephemeral_storage}' at 'ephemeralStorage.size' failed to satisfy "
                f"constraint: Member must have value less than or equal to {MAX_EPHEMERAL_MB}"
            ]
        )
    _check_environment(config)
    if len(config.layers) > MAX_LAYERS:
        raise InvalidParameter("Cannot reference more than 5 layers.")
    if config.logging.log_format == "Text" and (
        config.logging.application_log_level or config.logging.system_log_level
    ):
        raise InvalidParameter(
            "Advanced logging controls (ApplicationLogLevel, SystemLogLevel) can only be set "
            "when LogFormat is JSON."
        )


def _check_environment(config: FunctionConfig) -> None:
    variables = dict(config.environment)
    measured = orjson.dumps(variables).decode()
    if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameter(
            "Lambda was unable to configure your environment variables because the environment "
            f"variables you have provided exceeded the 4KB limit. String measured: {measured}"
        )
    reserved = sorted(RESERVED_ENV_KEYS.intersection(variables))
    if reserved:
        raise InvalidParameter(
            "Lambda was unable to configure your environment variables because the environment "
            f"variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidParameter("Number of tags exceeds resource tag limit.")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise InvalidParameter(f"Tag keys may not start with 'aws:': {key}")
