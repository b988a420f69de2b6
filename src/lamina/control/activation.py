"""Moves functions from Pending to Active (and updates from InProgress to Successful).

Activation makes sure the code is extracted, from the verified blob, into the read-only cache
the execution engine mounts. It runs in tasks this object owns; `close()` stops them. At start
it resumes whatever a crash left Pending or InProgress, so no function stays stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid

from lamina.clock import Clock
from lamina.control.code import CodeRepository
from lamina.errors import LaminaError
from lamina.model.function import Function, State, Status, UpdateStatus
from lamina.store.protocol import Store

log = logging.getLogger(__name__)

ACTIVE = Status(State.ACTIVE, last_update=UpdateStatus.SUCCESSFUL)


class Activator:
    """Owns the activation tasks of every function."""

    def __init__(self, store: Store, code: CodeRepository, clock: Clock) -> None:
        self._store = store
        self._code = code
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def schedule(self, region: str, name: str, *, recheck: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._activate(region, name, recheck))
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def resume(self) -> None:
        """Finish what a previous run left Pending or InProgress, and re-verify any Active
        function whose extracted code is gone (it is re-extracted from the verified blob, or
        marked Failed if the blob does not verify)."""
        for function in await self._store.functions_in_state(State.PENDING):
            self.schedule(function.region, function.name)
        for function in await self._store.functions_in_state(State.ACTIVE):
            unsettled = function.latest.status.last_update is UpdateStatus.IN_PROGRESS
            if unsettled or not self._code.is_extracted(function.latest.code.sha256_hex):
                self.schedule(function.region, function.name, recheck=True)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _activate(self, region: str, name: str, recheck: bool) -> None:
        function = await self._store.get_function(region, name)
        if function is None:
            return
        digest = function.latest.code.sha256_hex
        try:
            await self._code.ensure_extracted(digest)
        except LaminaError as error:
            log.error("activation of %s/%s failed: %s", region, name, error.message)
            await self._settle(region, name, digest, _failed(function, error.message), recheck)
            return
        await self._settle(region, name, digest, ACTIVE, recheck=False)

    async def _settle(
        self, region: str, name: str, digest: str, status: Status, recheck: bool
    ) -> None:
        def change(function: Function) -> Function:
            latest = function.latest
            if latest.code.sha256_hex != digest or (_settled(latest.status) and not recheck):
                return function  # a newer update owns the outcome now
            settled = dataclasses.replace(latest, status=status, revision_id=str(uuid.uuid4()))
            return dataclasses.replace(function, latest=settled)

        with contextlib.suppress(LaminaError):  # deleted meanwhile: nothing to settle
            await self._store.update_function(region, name, change)


def _settled(status: Status) -> bool:
    return status.state is not State.PENDING and status.last_update is not UpdateStatus.IN_PROGRESS


def _failed(function: Function, reason: str) -> Status:
    status = function.latest.status
    if status.state is State.PENDING or status.last_update is not UpdateStatus.IN_PROGRESS:
        return Status(State.FAILED, reason, "InvalidZipFileException")
    return Status(
        State.ACTIVE,
        last_update=UpdateStatus.FAILED,
        last_update_reason=reason,
        last_update_reason_code="InvalidZipFileException",
    )
