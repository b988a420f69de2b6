"""One change of a function at a time: while `$LATEST` is InProgress, AWS refuses other updates
and PublishVersion with ResourceConflictException (control-api.md §4.2; public deploy scripts
wait with the function_updated waiter for this reason). The activation that ends InProgress
is held here, so the window stays open for as long as the test needs it."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lamina.clock import SystemClock
from lamina.control.activation import Activator
from lamina.control.code import CodeRepository
from lamina.control.functions import FunctionService, NewFunction
from lamina.errors import Conflict
from lamina.ids import FunctionRef
from lamina.model.function import FunctionConfig, State, UpdateStatus
from lamina.store.archive import ArchiveLimits
from lamina.store.blobs import KEY_BYTES, CodeBlobStore
from lamina.store.codecache import CodeCache
from lamina.store.sqlite import SqliteStore

T = TypeVar("T")
ACCOUNT = "000000000000"
REGION = "us-east-1"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
IN_PROGRESS = (
    f"The operation cannot be performed at this time. An update is in progress for resource: {ARN}"
)


class HeldActivator(Activator):
    """Activation waits until `release()`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held: list[tuple[str, str]] = []

    def schedule(self, region: str, name: str, *, recheck: bool = False) -> None:
        self.held.append((region, name))

    async def release(self) -> None:
        held, self.held = self.held, []
        for region, name in held:
            await self._activate(region, name, recheck=False)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def test_updates_and_publishing_wait_for_an_update_in_progress(tmp_path: Path) -> None:
    async def body() -> None:
        store = SqliteStore(tmp_path / "state.db")
        limits = ArchiveLimits()
        code = CodeRepository(
            CodeBlobStore(tmp_path / "blobs", b"k" * KEY_BYTES),
            CodeCache(tmp_path / "code", limits),
            limits,
        )
        clock = SystemClock()
        activator = HeldActivator(store, code, clock)
        functions = FunctionService(store, code, activator, clock, ACCOUNT)
        ref = FunctionRef(REGION, ACCOUNT, "f", None)
        config = FunctionConfig("python3.11", "app.handler", f"arn:aws:iam::{ACCOUNT}:role/r")
        try:
            await functions.create(REGION, NewFunction("f", config, zipped("x = 1\n")))
            await activator.release()
            await functions.update_code(ref, zipped("x = 2\n"), None, dry_run=False)
            latest = (await functions.get(ref)).latest
            assert (latest.status.state, latest.status.last_update) == (
                State.ACTIVE,
                UpdateStatus.IN_PROGRESS,
            )
            for refused in (
                functions.publish(ref),
                functions.update_configuration(ref, {"memory_size": 256}, None),
                functions.update_code(ref, zipped("x = 3\n"), None, dry_run=False),
            ):
                with pytest.raises(Conflict) as caught:
                    await refused
                assert caught.value.message == IN_PROGRESS
            # UpdateFunctionCode's own Publish flag publishes the code it just stored.
            assert (await functions.publish(ref, with_update=True)).version == "1"
            await activator.release()
            await functions.update_configuration(ref, {"memory_size": 256}, None)
            await activator.release()
            assert (await functions.publish(ref)).version == "2"
        finally:
            await store.close()

    run(body())
