"""An EventQueue on a real SQLite file and group commit, around a stand-in invoker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from lamina.clock import SystemClock
from lamina.control.event_config import AsyncPolicy
from lamina.control.events import EventQueue
from lamina.store.database import Database
from lamina.store.group_commit import GroupCommit

ACCOUNT = "000000000000"


class Configs:
    """Every event runs under the default asynchronous settings."""

    async def policy(self, region: str, name: str, qualifier: str | None) -> AsyncPolicy:
        return AsyncPolicy()


@asynccontextmanager
async def event_queue(
    tmp_path: Path,
    invoker: object,
    *,
    delay_scale: float = 1.0,
    max_in_flight: int = 16,
    max_total: int = 256,
    reserved: dict[str, int] | None = None,
) -> AsyncIterator[EventQueue]:
    path = tmp_path / "state.db"
    database = Database(path)
    commits = GroupCommit(path)
    commits.start()
    queue = EventQueue(
        database,
        commits,
        cast("Any", invoker),
        cast("Any", None),  # functions: only for dead letters
        cast("Any", Configs()),
        cast("Any", None),  # deliveries: no destinations
        SystemClock(),
        ACCOUNT,
        delay_scale,
        max_in_flight=max_in_flight,
        max_total=max_total,
        reserved=lambda region, name: (reserved or {}).get(name),
    )
    try:
        yield queue
    finally:
        await queue.close()
        await commits.close()
        database.close()
