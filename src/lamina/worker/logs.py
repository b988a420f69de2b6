"""An environment's log: its stdout/stderr pipe, per-invocation capture, and Lambda's lines.

Everything the environment writes goes to its log stream with a timestamp per line; what it
writes during an invocation is also captured for that invocation's tail (X-Amz-Log-Result).

Under LoggingConfig `LogFormat: JSON` the platform lines become AWS's system log records
(`{"time": ..., "type": "platform.start", "record": {...}}`, `platform.runtimeDone`,
`platform.report`), filtered by `SystemLogLevel` with AWS's levels: start and report are INFO,
runtimeDone is DEBUG (Lambda developer guide, "Log-level filtering"). The timeout line has no
JSON form: `platform.report` carries `status: "timeout"`. The function's own output is the
runtime's business (lamina_inside/python_runtime.py formats and filters `logging` records).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

from lamina.worker.pipes import PipeWatcher

TAIL_BYTES = 4096
READ_DELAY_S = 0.002  # how long output may wait in the pipe before it is read
BUSY_DELAY_S = 0.005  # an invocation's first moments, when its end will drain the pipe anyway
PIPE_BYTES = 1 << 20
SYSTEM_LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30}


class LogSink(Protocol):
    """Where function log lines go (one stream per environment)."""

    def write(
        self, group: str, stream: str, lines: list[tuple[int, str]], *, region: str | None = None
    ) -> None:
        """Append (epoch ms, text) lines to a stream; must not block for long."""
        ...


@dataclass(frozen=True, slots=True)
class LogStyle:
    """How platform lines are written: AWS's text lines, or JSON records at a minimum level."""

    json: bool = False
    system_level: str = "INFO"

    @classmethod
    def of(cls, log_format: str, system_level: str | None) -> LogStyle:
        return cls(log_format == "JSON", system_level or "INFO")

    def emits(self, level: str) -> bool:
        return SYSTEM_LEVELS[level] >= SYSTEM_LEVELS.get(self.system_level, 20)


TEXT = LogStyle()


class EnvironmentLog:
    """Reads one environment's output pipe and keeps the current invocation's text."""

    def __init__(
        self,
        fd: int,
        pipes: PipeWatcher,
        sink: LogSink,
        group: str,
        stream: str,
        style: LogStyle = TEXT,
        region: str | None = None,
    ) -> None:
        self._fd = fd
        self._pipes = pipes
        self._sink = sink
        self._group = group
        self._stream = stream
        self._style = style
        self._region = region
        self._partial = b""
        self._capture = bytearray()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._later: asyncio.TimerHandle | None = None  # set while the pipe waits to be read
        # A first invocation sent before init ended: its START goes where the runtime's
        # boundary shows in the output (expect_boundary); `_held` may end in part of it.
        self._boundary: tuple[bytes, str] | None = None
        self._held = b""
        with contextlib.suppress(OSError):  # room for a burst while nobody reads
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        pipes.add(fd, self._on_readable)

    # Output is read in batches, never line by line: a function printing line by line would
    # otherwise wake the event loop once per line, on the invocation's clock. Between
    # invocations the pipe is watched (one-shot) and read READ_DELAY_S after it has data; an
    # invocation disarms it for BUSY_DELAY_S (its end drains it anyway), then it is read and
    # watched again, so a long invocation's output still flows and a full pipe is read.

    def _on_readable(self) -> None:
        if self._later is None:  # else a read is due anyway (a hang-up seen while disarmed)
            self._later = self._loop.call_later(READ_DELAY_S, self._read_later)

    def _read_later(self) -> None:
        self._later = None
        self.drain()
        self._rearm()

    def _rearm(self) -> None:
        if not self._closed:
            self._pipes.arm(self._fd)

    def drain(self) -> None:
        """Read whatever the environment has written so far (non-blocking)."""
        while not self._closed:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._flush_partial()
                self._stop()
                return
            if self._boundary is not None:
                chunk = self._split_at_boundary(chunk)
            self._output(chunk)

    def _output(self, chunk: bytes) -> None:
        self._capture += chunk
        self._emit(chunk)

    def _emit(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        if complete:
            now = int(time.time() * 1000)
            lines = [(now, line.decode("utf-8", "replace")) for line in complete]
            self._sink.write(self._group, self._stream, lines, region=self._region)

    def _flush_partial(self) -> None:
        if self._partial:
            now = int(time.time() * 1000)
            text = self._partial.decode("utf-8", "replace")
            self._sink.write(self._group, self._stream, [(now, text)], region=self._region)
            self._partial = b""

    def platform(self, text: str) -> None:
        """A line Lamina writes itself (START, END, REPORT, timeouts)."""
        if text.startswith("START "):  # an invocation begins: its end drains the pipe
            self._drop_boundary()
            if self._later is not None:  # output is waiting: it belongs before START
                self.drain()
            self._invocation_began()
        self._write_platform(text)

    def expect_boundary(self, boundary: bytes, start: str) -> None:
        """The first invocation went out with the specialization: the runtime writes
        `boundary` to its output when init has ended (before READY), and the invocation's
        START line goes there. Call `began_at_boundary` at READY."""
        self._boundary = (boundary, start)

    def began_at_boundary(self) -> None:
        """READY came: the boundary is in the pipe, or was read already. If the function's
        init moved its output elsewhere it never comes: START goes here instead."""
        self.drain()
        if self._boundary is not None:
            _, start = self._boundary
            self._drop_boundary()
            self._write_platform(start)
        self._invocation_began()

    def _split_at_boundary(self, chunk: bytes) -> bytes:
        """Output before the boundary is init's; START follows it. Returns what comes after
        the boundary, or all but a tail that may be the start of a boundary split in two."""
        assert self._boundary is not None
        boundary, start = self._boundary
        data = self._held + chunk
        at = data.find(boundary)
        if at < 0:
            cut = len(data) - _partial_prefix(data, boundary)
            data, self._held = data[:cut], data[cut:]
            return data
        self._boundary, self._held = None, b""
        self._output(data[:at])
        self._write_platform(start)
        return data[at + len(boundary) :]

    def _drop_boundary(self) -> None:
        self._boundary = None
        held, self._held = self._held, b""
        if held:
            self._output(held)

    def _invocation_began(self) -> None:
        if self._later is not None:  # just drained
            self._later.cancel()
        elif not self._closed:
            self._pipes.disarm(self._fd)  # its prints must not wake the loop line by line
        self._later = self._loop.call_later(BUSY_DELAY_S, self._read_later)

    def _write_platform(self, text: str) -> None:
        self._flush_partial()
        now = time.time()
        if self._style.json:
            records = [r for r in json_platform_records(text, now) if self._style.emits(r[0])]
            lines = [line for _, line in records]
        else:
            lines = [text.rstrip("\n")]
        if not lines:
            return
        self._capture += "".join(line + "\n" for line in lines).encode()
        stamp = int(now * 1000)
        self._sink.write(
            self._group, self._stream, [(stamp, line) for line in lines], region=self._region
        )

    def take(self) -> bytes:
        """The captured text since the last take (call `drain` first: at an invocation's end),
        and start a new capture."""
        if self._later is not None:  # just drained: watch again at once
            self._later.cancel()
            self._later = None
            self._rearm()
        return self._take()

    def _take(self) -> bytes:
        captured = bytes(self._capture)
        self._capture.clear()
        return captured

    def close(self) -> None:
        """Read what is left, then stop; the capture stays available to `take`."""
        self.drain()
        self._drop_boundary()
        self._stop()

    def _stop(self) -> None:
        if not self._closed:
            self._closed = True
            if self._later is not None:
                self._later.cancel()
                self._later = None
            self._pipes.remove(self._fd)
            os.close(self._fd)


def _partial_prefix(data: bytes, boundary: bytes) -> int:
    """The length of the longest end of `data` that begins `boundary` (which starts with a NUL
    byte, so output rarely ends like it)."""
    start = data.rfind(boundary[:1], max(0, len(data) - len(boundary) + 1))
    if start >= 0 and boundary.startswith(data[start:]):
        return len(data) - start
    return 0


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_used_mb: int,
    init_ms: float | None,
    status: str | None = None,
) -> str:
    """AWS's exact REPORT format: tab-separated fields, ending with a tab and a newline."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_used_mb} MB",
    ]
    if init_ms is not None:
        fields.append(f"Init Duration: {init_ms:.2f} ms")
    if status is not None:
        fields.append(f"Status: {status}")
    return "\t".join(fields) + "\t\n"


def tail(log: bytes) -> bytes:
    return log[-TAIL_BYTES:]


# --- JSON system log records -----------------------------------------------------------------


def json_platform_records(text: str, now: float) -> list[tuple[str, str]]:
    """(level, JSON line) records for a platform line of ours (START/END/REPORT/timeout).

    END has no record of its own: AWS reports the invocation's end as `platform.runtimeDone`
    (DEBUG) right before `platform.report`, which is where its status is known."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    line = text.rstrip("\n")
    if line.startswith("START RequestId: "):
        request_id, _, version = line[len("START RequestId: ") :].partition(" Version: ")
        record: dict[str, Any] = {"requestId": request_id, "version": version}
        return [("INFO", _system_record(stamp, "platform.start", record))]
    if line.startswith("REPORT RequestId: "):
        return _report_records(stamp, line)
    return []


def _report_records(stamp: str, line: str) -> list[tuple[str, str]]:
    fields = line.rstrip("\t").split("\t")
    request_id = fields[0][len("REPORT RequestId: ") :]
    values = dict(field.split(": ", 1) for field in fields[1:] if ": " in field)
    metrics: dict[str, Any] = {
        "durationMs": float(values.get("Duration", "0 ms").split()[0]),
        "billedDurationMs": int(values.get("Billed Duration", "0 ms").split()[0]),
        "memorySizeMB": int(values.get("Memory Size", "0 MB").split()[0]),
        "maxMemoryUsedMB": int(values.get("Max Memory Used", "0 MB").split()[0]),
    }
    if "Init Duration" in values:
        metrics["initDurationMs"] = float(values["Init Duration"].split()[0])
    status = values.get("Status", "success")
    done: dict[str, Any] = {"requestId": request_id, "status": status}
    report: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
    if "Error Type" in values:
        done["errorType"] = report["errorType"] = values["Error Type"]
    done["metrics"] = {"durationMs": metrics["durationMs"], "producedBytes": 0}
    return [
        ("DEBUG", _system_record(stamp, "platform.runtimeDone", done)),
        ("INFO", _system_record(stamp, "platform.report", report)),
    ]


def _system_record(stamp: str, kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"time": stamp, "type": kind, "record": record}, separators=(",", ":"))
