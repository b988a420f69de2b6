"""Function log streams on disk: one append-only file per stream, written off the hot path.

`write` only appends formatted bytes to an in-memory buffer; a background task flushes the
buffers every `interval_s` with one append per stream (and `close` flushes the rest), so an
invocation never waits for the disk. Layout: <root>/<group-hex>/<stream-hex>.log, one record
per line, `<epoch ms>\\t<text>` with newlines in the text escaped. The CloudWatch Logs API (a
later issue) reads these files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

MAX_OPEN_STREAMS = 256


def _hex(name: str) -> str:
    return name.encode().hex()


class FileLogSink:
    """Buffers lines per stream; `start()` flushes them periodically, `close()` finally."""

    def __init__(self, root: Path, interval_s: float = 0.2) -> None:
        self._root = root
        self._interval = interval_s
        self._pending: dict[tuple[str, str], bytearray] = {}
        self._fds: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def write(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        buffer = self._pending.get((group, stream))
        if buffer is None:
            buffer = self._pending[(group, stream)] = bytearray()
        for ms, text in lines:
            buffer += f"{ms}\t{text.replace(chr(10), chr(92) + 'n')}\n".encode()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.flush()

    def flush(self) -> None:
        """Append every buffered stream to its file (page cache; microseconds per stream)."""
        pending, self._pending = self._pending, {}
        for key, data in pending.items():
            try:
                os.write(self._fd(key), data)
            except OSError:
                log.exception("cannot write function log %s %s", *key)

    def _fd(self, key: tuple[str, str]) -> int:
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        group, stream = key
        directory = self._root / _hex(group)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{_hex(stream)}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._fds[key] = fd
        if len(self._fds) > MAX_OPEN_STREAMS:
            _, oldest = self._fds.popitem(last=False)
            os.close(oldest)
        return fd

    def read(self, group: str, stream: str) -> list[tuple[int, str]]:
        """Every flushed line of a stream (tests and the CLI use this until the Logs API)."""
        path = self._root / _hex(group) / f"{_hex(stream)}.log"
        if not path.exists():
            return []
        records = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            ms, _, text = raw.partition("\t")
            records.append((int(ms), text))
        return records

    def streams(self, group: str) -> list[str]:
        directory = self._root / _hex(group)
        if not directory.exists():
            return []
        return sorted(bytes.fromhex(p.stem).decode() for p in directory.glob("*.log"))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
