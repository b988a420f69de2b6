"""One execution environment: a sandboxed process tree serving one invocation at a time.

Lifecycle (one transition function per event, no other mutation):

    STARTING --ready--> IDLE --invoke--> BUSY --result--> IDLE
        |                 |                |
        +--init error-----+--destroy-------+--timeout / crash / OOM--> DEAD

With a first invocation sent ahead (`send_first`), READY leads from STARTING to BUSY.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.runtimes.catalog import uses_bootstrap
from lamina.sandbox.cgroups import Cgroup
from lamina.sandbox.zygote import Zygote
from lamina.worker.invocation import InvokeRequest, InvokeResult, Target
from lamina.worker.logs import EnvironmentLog, end_line, report_line, start_line
from lamina_inside import channel

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0  # AWS's on-demand init limit
SHUTDOWN_WAIT_S = 2.5  # the bridge's 2 s shutdown window, and its own exit


class EnvState(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    header: dict[str, object]
    payload: bytes


def encode_frame(kind: int, header: dict[str, Any], payload: bytes = b"") -> bytes:
    """A channel frame as the server writes it (the header encoded with orjson)."""
    return channel.frame(kind, orjson.dumps(header), payload)


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next frame on a channel; IncompleteReadError at its end."""
    size, kind = channel.parse_prefix(await reader.readexactly(channel.PREFIX_SIZE))
    header, payload = channel.decode_body(await reader.readexactly(size), orjson.loads)
    return Frame(kind, header, payload)


class Environment:
    """Owns the sandbox's channel, log pipe, cgroup and init pid."""

    def __init__(
        self,
        env_id: str,
        target: Target,
        zygote: Zygote,
        pid: int,
        cgroup: Cgroup | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log_: EnvironmentLog,
        release: Callable[[Environment], None],
    ) -> None:
        self.env_id = env_id
        self.target = target
        self.pid = pid
        self.state = EnvState.STARTING
        self.init_ms: float | None = None  # reported once, on the first invocation
        self.init_error: bytes | None = None
        self.last_used = time.monotonic()
        self._zygote = zygote
        self.cgroup = cgroup
        self._release = release
        self._reader = reader
        self._writer = writer
        self._log = log_
        self._exited = zygote.exited(env_id)
        try:  # its process group, recorded while its init lives (see destroy)
            self._group: int | None = os.getpgid(pid)
        except OSError:
            self._group = None
        self._exit_status: int | None = None
        self._destroyed = False
        self._unreported: _Report | None = None  # the last invocation's END and REPORT, due
        self._first: InvokeRequest | None = None  # sent with the specialization (send_first)
        self._ready_at = 0.0  # perf_counter at READY: a pipelined first invocation's start

    # --- init ----------------------------------------------------------------------------------

    def send_first(self, request: InvokeRequest, boundary: bytes) -> None:
        """Send the first invocation right behind the specialization: the runtime reads it
        as soon as its init is done, with no round trip through the server. Its START goes
        where the runtime writes `boundary` to its output, between init's output and the
        invocation's; its timeout counts from there (the header carries it, not a deadline).
        Only `invoke(request, ...)` may follow."""
        self._first = request
        self._log.expect_boundary(boundary, start_line(request.request_id, self.target.version))
        self._send_invoke(request, {"timeout_ms": self.target.timeout_s * 1000})

    async def wait_ready(self) -> None:
        """Wait for the runtime's READY (then IDLE, or BUSY with a first invocation sent
        ahead) or its init failure (then DEAD with `init_error` set; call
        `fail_first_invocation`)."""
        started = time.perf_counter()
        frame = await self._next_frame(INIT_TIMEOUT_S)
        if frame is not None and frame.kind == channel.READY:
            self.init_ms = float(str(frame.header.get("init_ms", 0.0)))
            self.state = EnvState.IDLE if self._first is None else EnvState.BUSY
            if self._first is not None:  # it runs already
                self._ready_at = time.perf_counter()
                self._log.began_at_boundary()
            return
        self.state = EnvState.DEAD
        self.init_ms = (time.perf_counter() - started) * 1000
        if frame is not None and frame.kind == channel.INIT_ERROR:
            self.init_error = _error_body(frame)
        elif frame is None and self._exit_status is None:
            self.init_error = _platform_error(
                "Runtime.InitTimeout", f"Init timed out after {INIT_TIMEOUT_S:.2f} seconds"
            )
        else:
            self.init_error = _platform_error("Runtime.ExitError", self._exit_reason(None))

    async def fail_first_invocation(self, request: InvokeRequest) -> InvokeResult:
        """The invocation that triggered a failed init gets the init error, as in AWS."""
        assert self.init_error is not None
        self._log.drain()
        self._log.platform(start_line(request.request_id, self.target.version))
        error_type = json.loads(self.init_error).get("errorType", "Runtime.Unknown")
        status = f"error\tError Type: {error_type}"
        self._write_report(_Report(request.request_id, self.init_ms or 0.0, None, status))
        await self.destroy()
        return InvokeResult(self.init_error, "Unhandled", self._log.take(), cold_start=True)

    # --- invoke --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """False once its process tree has exited or its channel closed."""
        return not self._exited.done() and not self._writer.is_closing()

    async def invoke(self, request: InvokeRequest, cold: bool) -> InvokeResult:
        target = self.target
        if request is self._first and self.state is EnvState.BUSY:  # sent ahead; it runs
            self._first = None
            started = self._ready_at
        elif self.state is not EnvState.IDLE or self._first is not None:
            raise RuntimeError(f"environment {self.env_id} is {self.state.value}, not idle")
        else:
            self._report_due()  # the previous invocation's lines come before this START
            self.state = EnvState.BUSY
            self._log.platform(start_line(request.request_id, target.version))
            started = time.perf_counter()
            deadline_ms = int((time.time() + target.timeout_s) * 1000)
            self._send_invoke(request, {"deadline_ms": deadline_ms})
        frame = await self._next_frame(target.timeout_s)
        duration_ms = min((time.perf_counter() - started) * 1000, target.timeout_s * 1000.0)
        payload, error, content_type, status = self._outcome(request, frame)
        report = _Report(request.request_id, duration_ms, self.init_ms if cold else None, status)
        if self.state is not EnvState.BUSY:  # it timed out, crashed or ran out of memory
            self._write_report(report)
            await self.destroy()
            return InvokeResult(payload, error, self._log.take(), content_type, cold)
        self.state = EnvState.IDLE
        self.last_used = time.monotonic()
        if request.wants_log:
            self._write_report(report)
            return InvokeResult(payload, error, self._log.take(), content_type, cold)
        # The caller answers first; END and REPORT (a pipe read, a cgroup read and the log
        # writes: ~0.15 ms here) follow in the loop's next turn, or before this environment's
        # next START if that comes sooner.
        self._unreported = report
        asyncio.get_running_loop().call_soon(self._report_due)
        return InvokeResult(payload, error, b"", content_type, cold)

    def _send_invoke(self, request: InvokeRequest, limit: dict[str, int]) -> None:
        header = _invoke_header(request, limit)
        # If it died since it went idle, the write fails and the read that follows sees the end.
        with contextlib.suppress(RuntimeError, ConnectionError):
            self._writer.write(encode_frame(channel.INVOKE, header, request.payload))

    def _report_due(self) -> None:
        report, self._unreported = self._unreported, None
        if report is not None:
            self._write_report(report)
            self._log.take()

    def _write_report(self, report: _Report) -> None:
        """The invocation's end in its log: what it printed last, then END and REPORT."""
        self._log.drain()
        if report.status == "timeout":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            self._log.platform(
                f"{stamp}Z {report.request_id} Task timed out after "
                f"{self.target.timeout_s:.2f} seconds\n"
            )
        self._log.platform(end_line(report.request_id))
        self._log.platform(
            report_line(
                report.request_id,
                report.duration_ms,
                self.target.memory_mb,
                self._max_memory_mb(),
                report.init_ms,
                report.status,
            )
        )

    def _outcome(
        self, request: InvokeRequest, frame: Frame | None
    ) -> tuple[bytes, str | None, str, str | None]:
        """(payload, function error, content type, REPORT status) for what came back."""
        if frame is not None and frame.kind == channel.RESULT:
            return (
                frame.payload,
                None,
                str(frame.header.get("content_type", "application/json")),
                None,
            )
        if frame is not None and frame.kind == channel.ERROR:
            return _error_body(frame), "Unhandled", "application/json", None
        self.state = EnvState.DEAD
        prefix = f"RequestId: {request.request_id} Error: "
        if frame is None and self._exit_status is None:
            seconds = self.target.timeout_s
            body = _platform_error(
                "Sandbox.Timedout", f"{prefix}Task timed out after {seconds:.2f} seconds"
            )
            return body, "Unhandled", "application/json", "timeout"
        if self.cgroup is not None and self.cgroup.oom_kills() > 0:
            body = _platform_error(
                "Runtime.OutOfMemory", f"{prefix}Runtime exited with error: signal: killed"
            )
            return body, "Unhandled", "application/json", "error\tError Type: Runtime.OutOfMemory"
        body = _platform_error("Runtime.ExitError", prefix + self._exit_reason(frame))
        return body, "Unhandled", "application/json", "error\tError Type: Runtime.ExitError"

    def _exit_reason(self, frame: Frame | None) -> str:
        status = self._exit_status
        if status is None or status == 0:
            return "Runtime exited without providing a reason"
        if status > 128 or status < 0:
            number = status - 128 if status > 128 else -status
            return f"Runtime exited with error: signal: {_signal_name(number)}"
        return f"Runtime exited with error: exit status {status}"

    # --- plumbing ------------------------------------------------------------------------------

    async def _next_frame(self, limit_s: float) -> Frame | None:
        """The next frame, or None on timeout or death (then `_exit_status` is set if it died).

        Death always shows as end-of-file: the runtime holds the channel, and when the
        namespace's init exits the kernel kills every process that could still hold it."""
        try:
            async with asyncio.timeout(limit_s):
                return await read_frame(self._reader)
        except TimeoutError:
            if self._exited.done():
                self._exit_status = self._exited.result()
            return None
        except (asyncio.IncompleteReadError, ConnectionError):
            with contextlib.suppress(TimeoutError):
                self._exit_status = await asyncio.wait_for(asyncio.shield(self._exited), 5)
            return None

    def _max_memory_mb(self) -> int:
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                return self.cgroup.memory_peak_bytes() // (1024 * 1024)
        return _peak_of_children(self.pid)

    async def retire(self) -> None:
        """Let an idle environment go: behind the Runtime API bridge its extensions get
        SHUTDOWN and up to 2 s (the bridge's window) to finish; then, or otherwise at once,
        `destroy`."""
        bridged = uses_bootstrap(self.target.runtime) or self.target.extensions
        if bridged and self.state is EnvState.IDLE and self.alive:
            self.state = EnvState.DEAD
            with contextlib.suppress(RuntimeError, ConnectionError):
                self._writer.write(encode_frame(channel.SHUTDOWN, {}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), SHUTDOWN_WAIT_S)
        await self.destroy()

    async def destroy(self) -> None:
        """Kill the whole tree and release everything; idempotent."""
        if self._destroyed:
            return
        self._destroyed = True
        self._report_due()
        self.state = EnvState.DEAD
        if self._group is not None and self._group != os.getpgrp():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # Without a PID namespace (rlimits isolation) killing the init would leave its
                # children (a custom runtime's bootstrap) running: the environment's own
                # process group (its first process called setsid) goes too.
                os.killpg(self._group, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)  # init of the namespace: takes everything with it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exited), 5)
        self._writer.close()
        self._log.close()
        self._zygote.forget(self.env_id)
        self._release(self)


@dataclass(frozen=True, slots=True)
class _Report:
    """What an invocation's END and REPORT lines say."""

    request_id: str
    duration_ms: float
    init_ms: float | None  # a cold start's
    status: str | None  # REPORT's Status field: None, "timeout" or an error


def _invoke_header(request: InvokeRequest, limit: dict[str, int]) -> dict[str, object]:
    """`limit`: its absolute `deadline_ms`, or `timeout_ms` when the runtime starts the clock."""
    return {
        "request_id": request.request_id,
        **limit,
        "invoked_function_arn": request.invoked_arn,
        "client_context": request.client_context,
        "cognito_identity": None,
        "trace_id": request.trace_id,
        "tenant_id": request.tenant_id,
        "content_type": "application/json",
    }


# AWS's runtime layer is written in Go and names signals as Go's syscall package does.
_GO_SIGNAL_NAMES = {
    signal.SIGHUP: "hangup",
    signal.SIGINT: "interrupt",
    signal.SIGQUIT: "quit",
    signal.SIGILL: "illegal instruction",
    signal.SIGTRAP: "trace/breakpoint trap",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGKILL: "killed",
    signal.SIGUSR1: "user defined signal 1",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGUSR2: "user defined signal 2",
    signal.SIGPIPE: "broken pipe",
    signal.SIGALRM: "alarm clock",
    signal.SIGTERM: "terminated",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGSYS: "bad system call",
}


def _signal_name(number: int) -> str:
    try:
        return _GO_SIGNAL_NAMES.get(signal.Signals(number), f"signal {number}")
    except ValueError:
        return f"signal {number}"


def _error_body(frame: Frame) -> bytes:
    """The runtime's error document exactly as it would POST it (its payload), else the header
    without the channel's own keys."""
    if frame.payload:
        return frame.payload
    doc = {k: v for k, v in frame.header.items() if k != "error_type"}
    return json.dumps(doc).encode()


def _platform_error(error_type: str, message: str) -> bytes:
    # Errors Lamina synthesizes carry only type and message, as AWS's do.
    return json.dumps(
        {"errorType": error_type, "errorMessage": message}, separators=(",", ":")
    ).encode()


def _peak_of_children(pid: int) -> int:
    """Without a cgroup: the runtime's high-water mark (VmHWM) in MB."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            runtime = children.read().split()
        with open(f"/proc/{runtime[0]}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0
