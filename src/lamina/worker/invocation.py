"""What the worker is asked to run and what it answers, as immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    """Everything needed to create an environment for one function version."""

    region: str
    function_name: str
    version: str
    revision: str  # environments of an older revision are retired
    runtime: str
    handler: str
    code_dir: str
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    environment: Mapping[str, str]  # user variables merged with the reserved ones
    log_group: str
    log_format: str = "Text"  # LoggingConfig.LogFormat: platform lines as text or JSON records
    system_log_level: str | None = None  # LoggingConfig.SystemLogLevel (JSON format only)
    layer_dirs: tuple[str, ...] = ()  # extracted layer trees, in the function's order (/opt)
    extensions: bool = False  # a layer has /opt/extensions: the Runtime API bridge serves them

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.region, self.function_name, self.version)


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None  # decoded JSON text
    trace_id: str | None = None
    tenant_id: str | None = None
    # The caller reads the log (X-Amz-Log-Type: Tail): END and REPORT are written before the
    # result returns. Otherwise they follow it (see Environment.invoke).
    wants_log: bool = True


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """A completed invocation. A function error is a result, not an exception."""

    payload: bytes
    function_error: str | None  # "Unhandled" or None
    log: bytes  # this invocation's log text, START to REPORT (empty unless wants_log)
    content_type: str = "application/json"
    cold_start: bool = False
