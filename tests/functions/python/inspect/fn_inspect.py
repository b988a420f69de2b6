"""Reports what the handler sees: the event, the context, the environment and the interpreter."""

import os
import sys
from typing import Any

NAMES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "TZ",
    "GREETING",
    "ANSWER",
)


def handler(event: Any, context: Any) -> Any:
    print("inspect says hello")
    cc = context.client_context
    client = None
    if cc is not None and cc.client is not None:
        client = {name: getattr(cc.client, name) for name in type(cc.client).__slots__}
    return {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "client_context": None
            if cc is None
            else {"custom": cc.custom, "env": cc.env, "client": client},
        },
        "env": {name: os.environ.get(name) for name in NAMES},
        "sys_path0": sys.path[0],
        "cwd": os.getcwd(),
        "version_info": list(sys.version_info[:2]),
        "module_file": __file__,
    }
