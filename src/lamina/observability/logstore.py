"""Function log streams on disk: one append-only file per stream, written off the hot path.

Lines are buffered in memory and flushed by a background task (and at close), so an
invocation never waits for the disk. Layout: <root>/<group-hex>/<stream-hex>.log, one line
per record, `<epoch ms>\t<text>` (text with newlines escaped). The CloudWatch Logs API
(a later issue) reads these files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from pathlib import Path

log = logging.getLogger(__name__)


def _hex(name: str) -> str:
    return name.encode().hex()


class FileLogSink:
    """Buffers lines per stream; `start()` flushes them periodically, `close()` finally."""

    def __init__(self, root: Path, interval_s: float = 0.2) -> None:
        self._root = root
        self._interval = interval_s
        self._pending: defaultdict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    def write(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        self._pending[(group, stream)].extend(lines)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._pending:
                await asyncio.to_thread(self._flush, self._swap())

    def _swap(self) -> dict[tuple[str, str], list[tuple[int, str]]]:
        pending, self._pending = dict(self._pending), defaultdict(list)
        return pending

    def _flush(self, pending: dict[tuple[str, str], list[tuple[int, str]]]) -> None:
        for (group, stream), lines in pending.items():
            directory = self._root / _hex(group)
            directory.mkdir(parents=True, exist_ok=True)
            text = "".join(f"{ms}\t{line.replace(chr(10), chr(92) + 'n')}\n" for ms, line in lines)
            try:
                with open(directory / f"{_hex(stream)}.log", "a", encoding="utf-8") as out:
                    out.write(text)
            except OSError:
                log.exception("cannot write function log %s %s", group, stream)

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
        self._flush(self._swap())
