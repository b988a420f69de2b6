"""Invoke: resolve the version, check the payload, admit it, run it on the scheduler.

Lambda's rules live here (payload limits, states, reserved environment variables, concurrency
admission); running the code is the scheduler's and the worker's job. An invocation that a
provisioned environment serves was paid for ahead (provisioned concurrency); any other is
admitted by the ConcurrencyService or refused with TooManyRequests.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from lamina.control.code import CodeRepository
from lamina.control.concurrency import ConcurrencyService
from lamina.control.functions import FunctionService
from lamina.control.layers import LayerService
from lamina.errors import (
    Conflict,
    EntityTooLarge,
    InvalidParameter,
    MalformedRequest,
    TooManyRequests,
)
from lamina.ids import FunctionRef, function_arn
from lamina.model.function import Function, FunctionVersion, State
from lamina.worker.invocation import InvokeRequest, InvokeResult, Target
from lamina.worker.logs import tail

MAX_SYNC_PAYLOAD = 6_291_456  # 6 MB request (AWS)
MAX_ASYNC_PAYLOAD = 1_048_576  # 1 MB since October 2025 (limits.md §1)
MAX_RESPONSE = 6_291_556  # 6 MiB + 100 bytes (AWS/RIE), reported as Function.ResponseSizeTooLarge
MAX_CLIENT_CONTEXT = 3_583
INIT_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
TARGET_CACHE_SIZE = 4096


class Runner(Protocol):
    def has_idle_provisioned(self, target: Target) -> bool: ...

    async def invoke(self, target: Target, request: InvokeRequest) -> InvokeResult: ...


@dataclass(frozen=True, slots=True)
class Invocation:
    """What the caller gets back from a synchronous invoke."""

    result: InvokeResult
    executed_version: str
    payload: bytes
    function_error: str | None

    @property
    def log_tail(self) -> bytes:
        """The last 4 KB of this invocation's log (X-Amz-Log-Result)."""
        return tail(self.result.log)


class InvokeService:
    def __init__(
        self,
        functions: FunctionService,
        code: CodeRepository,
        runner: Runner,
        concurrency: ConcurrencyService,
        on_throttle: Callable[[tuple[str, str, str]], None] | None = None,
        layers: LayerService | None = None,
    ) -> None:
        self._layers = layers  # a version's layer ARNs -> their extracted trees
        self._functions = functions
        self._code = code
        self._runner = runner
        self._concurrency = concurrency
        self._on_throttle = on_throttle  # metrics: told the (region, name, version) refused
        self._targets: dict[tuple[str, str, str, str, str, tuple[str, ...]], Target] = {}

    async def check(self, ref: FunctionRef) -> FunctionVersion:
        """DryRun: the function exists and can be invoked."""
        _, version = await self._invocable(ref)
        return version

    async def invoke(
        self,
        ref: FunctionRef,
        payload: bytes,
        client_context_b64: str | None,
        request_id: str | None = None,
        wants_log: bool = True,
    ) -> Invocation:
        """Run the version `ref` names. `request_id` is the API call's: AWS answers a
        synchronous invoke with the invocation's own request id in x-amzn-RequestId. Without
        `wants_log` the result carries no log (it is written all the same).
        Raises TooManyRequests when a concurrency limit or the scaling rate refuses it."""
        function, version = await self._invocable(ref)
        payload = checked_payload(payload)
        request = InvokeRequest(
            request_id=request_id or str(uuid.uuid4()),
            payload=payload,
            invoked_arn=self._functions.arn(ref),
            client_context=_client_context(client_context_b64),
            wants_log=wants_log,
        )
        code_dir = await self._code.ensure_extracted(version.code.sha256_hex)
        layer_dirs = await self._layer_dirs(function.region, version)
        target = self._target(function.region, function.name, version, str(code_dir), layer_dirs)
        if self._runner.has_idle_provisioned(target):
            result = await self._runner.invoke(target, request)  # takes it before suspending
        else:
            try:
                lease = self._concurrency.admit(function.region, function.name)
                try:
                    result = await self._runner.invoke(target, request)  # may refuse a launch
                finally:
                    self._concurrency.release(lease)
            except TooManyRequests:
                if self._on_throttle is not None:
                    self._on_throttle(target.key)
                raise
        body, error = result.payload, result.function_error
        if len(body) > MAX_RESPONSE:
            body = _response_too_large()
            error = "Unhandled"
        return Invocation(result, version.version, body, error)

    async def provisioned_target(self, ref: FunctionRef) -> Target:
        """What a provisioned environment of the (published) version `ref` names runs."""
        function, version = await self._functions.resolve(ref)
        code_dir = await self._code.ensure_extracted(version.code.sha256_hex)
        layer_dirs = await self._layer_dirs(function.region, version)
        target = self._target(function.region, function.name, version, str(code_dir), layer_dirs)
        environment = {**target.environment, INIT_TYPE: "provisioned-concurrency"}
        return dataclasses.replace(target, environment=environment)

    def _target(
        self,
        region: str,
        name: str,
        version: FunctionVersion,
        code_dir: str,
        layer_dirs: tuple[str, ...] = (),
    ) -> Target:
        """Memoized per stored state of a version (its RevisionId): the hot path builds no
        dictionaries. Published versions are read afresh on each call, so the key is the
        RevisionId, not the value's identity."""
        key = (region, name, version.version, version.revision_id, code_dir, layer_dirs)
        target = self._targets.get(key)
        if target is None:
            if len(self._targets) >= TARGET_CACHE_SIZE:
                self._targets.clear()
            target = self._targets[key] = _target(region, name, version, code_dir, layer_dirs)
        return target

    async def _layer_dirs(self, region: str, version: FunctionVersion) -> tuple[str, ...]:
        """The version's layers' trees, in order (re-extracted from the verified blob if the
        cache lost one; a tampered blob raises CodeIntegrityError)."""
        if not version.config.layers or self._layers is None:
            return ()
        return await self._layers.code_dirs(region, version.config.layers)

    async def _invocable(self, ref: FunctionRef) -> tuple[Function, FunctionVersion]:
        function, version = await self._functions.resolve(ref)
        state = version.status.state
        if state is not State.ACTIVE:
            raise Conflict(
                "The operation cannot be performed at this time. The function is currently in "
                f"the following state: {state.value}"
            )
        return function, version


def checked_payload(payload: bytes) -> bytes:
    """The event as the function will see it; refuses what AWS refuses (too large, not JSON)."""
    if len(payload) > MAX_SYNC_PAYLOAD:
        raise EntityTooLarge(  # AWS's wording, as SDK error logs show it
            f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction "
            "operation"
        )
    if not payload.strip():
        return b"{}"  # an empty body is the empty event (as the AWS CLI and SDKs observe)
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise MalformedRequest(
            f"Could not parse request body into json: Could not parse payload into json: {error}"
        ) from None
    return payload


def _client_context(encoded: str | None) -> str | None:
    if encoded is None:
        return None
    if len(encoded) > MAX_CLIENT_CONTEXT:
        raise InvalidParameter(
            f"Client context must be smaller than {MAX_CLIENT_CONTEXT} bytes (base64)."
        )
    try:
        text = base64.b64decode(encoded, validate=True).decode()
        json.loads(text)
    except (binascii.Error, ValueError):
        raise MalformedRequest(
            "Client context must be a valid Base64-encoded JSON object."
        ) from None
    return text


def _response_too_large() -> bytes:
    return orjson.dumps(
        {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    )


def _has_extensions(layer_dir: str) -> bool:
    """Whether a layer brings extensions (executables in its `extensions/`, under /opt)."""
    try:
        return any(entry.is_file() for entry in os.scandir(os.path.join(layer_dir, "extensions")))
    except OSError:
        return False


def _target(
    region: str, name: str, version: FunctionVersion, code_dir: str, layer_dirs: tuple[str, ...]
) -> Target:
    config = version.config
    log_group = config.logging.log_group or f"/aws/lambda/{name}"
    return Target(
        region=region,
        function_name=name,
        version=version.version,
        revision=_revision(version),
        runtime=config.runtime,
        handler=config.handler,
        code_dir=code_dir,
        layer_dirs=layer_dirs,
        extensions=any(_has_extensions(d) for d in layer_dirs),
        memory_mb=config.memory_size,
        timeout_s=config.timeout,
        ephemeral_mb=config.ephemeral_storage,
        environment=_environment(region, name, version, log_group),
        log_group=log_group,
        log_format=config.logging.log_format,
        system_log_level=config.logging.system_log_level,
    )


def _revision(version: FunctionVersion) -> str:
    """What retires a version's environments when it changes: its LastModified, which every
    update of `$LATEST`'s code or configuration sets, and a published version's publish time,
    which tells it from a same-numbered version of a function deleted and re-created under the
    same name. Not the RevisionId: AWS changes it on publishing, status changes and permission
    changes too, none of which must cost warm or provisioned environments."""
    return f"{version.version}@{version.last_modified.isoformat()}"


def _environment(
    region: str, name: str, version: FunctionVersion, log_group: str
) -> dict[str, str]:
    """Customer variables, overridden by the reserved ones (execution-environment.md §1)."""
    config = version.config
    reserved = {
        "_HANDLER": config.handler,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": version.version,
        INIT_TYPE: "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
    }
    if config.logging.log_format == "JSON":
        reserved["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        reserved["AWS_LAMBDA_LOG_LEVEL"] = config.logging.application_log_level or "INFO"
    defaults = {
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
        "/var/task:/var/task/lib:/opt/lib",
        "PYTHONPATH": "/var/runtime",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    if config.runtime.startswith("nodejs"):  # recorded AWS (execution-environment.md §1)
        major = config.runtime.removeprefix("nodejs").split(".")[0]
        defaults["NODE_PATH"] = (
            f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
            "/var/runtime/node_modules:/var/runtime:/var/task"
        )
    return {**defaults, **config.environment, **reserved}


__all__ = ["Invocation", "InvokeService", "function_arn"]
