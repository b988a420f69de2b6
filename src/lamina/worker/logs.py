"""An environment's log: its stdout/stderr pipe, per-invocation capture, and Lambda's lines.

Everything the environment writes goes to its log stream with a timestamp per line; what it
writes during an invocation is also captured for that invocation's tail (X-Amz-Log-Result).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Protocol

TAIL_BYTES = 4096


class LogSink(Protocol):
    """Where function log lines go (one stream per environment)."""

    def write(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        """Append (epoch ms, text) lines to a stream; must not block for long."""
        ...


class EnvironmentLog:
    """Reads one environment's output pipe and keeps the current invocation's text."""

    def __init__(self, fd: int, sink: LogSink, group: str, stream: str) -> None:
        self._fd = fd
        self._sink = sink
        self._group = group
        self._stream = stream
        self._partial = b""
        self._capture = bytearray()
        self._closed = False
        asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        self.drain()

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
            self._capture += chunk
            self._emit(chunk)

    def _emit(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        if complete:
            now = int(time.time() * 1000)
            lines = [(now, line.decode("utf-8", "replace")) for line in complete]
            self._sink.write(self._group, self._stream, lines)

    def _flush_partial(self) -> None:
        if self._partial:
            self._sink.write(
                self._group,
                self._stream,
                [(int(time.time() * 1000), self._partial.decode("utf-8", "replace"))],
            )
            self._partial = b""

    def platform(self, text: str) -> None:
        """A line Lamina writes itself (START, END, REPORT, timeouts)."""
        self._flush_partial()
        self._capture += text.encode()
        self._sink.write(self._group, self._stream, [(int(time.time() * 1000), text.rstrip("\n"))])

    def take(self) -> bytes:
        """The captured text since the last take, and start a new capture."""
        self.drain()
        return self._take()

    def _take(self) -> bytes:
        captured = bytes(self._capture)
        self._capture.clear()
        return captured

    def close(self) -> None:
        """Read what is left, then stop; the capture stays available to `take`."""
        self.drain()
        self._stop()

    def _stop(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)


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
