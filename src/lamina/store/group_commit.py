"""Group commit: many coroutines' writes share one transaction (and one fsync) per loop turn.

An async accept must be durable before its 202; committing each alone costs an fsync apiece.
Writes queued during one turn of the event loop are committed together right after it, each in
its own savepoint so one failing write fails only its caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lamina.store.database import Database

Write = Callable[[Database], None]


class GroupCommit:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._pending: list[tuple[Write, asyncio.Future[None]]] = []
        self._scheduled = False

    async def write(self, step: Write) -> None:
        """Run `step` inside the next batch; returns once that batch is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((step, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit)
        await done

    def _commit(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        failures: dict[int, BaseException] = {}
        try:
            with self._db.write(invalidate=False):
                for index, (step, _) in enumerate(batch):
                    try:
                        with self._db.savepoint():
                            step(self._db)
                    except Exception as error:  # only this caller's write is lost: tell it
                        failures[index] = error
        except Exception as error:  # the commit itself failed: nothing of the batch is kept
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        for index, (_, done) in enumerate(batch):
            if done.done():  # the caller was cancelled; its write is committed regardless
                continue
            if index in failures:
                done.set_exception(failures[index])
            else:
                done.set_result(None)
