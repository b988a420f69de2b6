"""A stem's veth is made in a worker thread; a caller that gives up meanwhile loses nothing."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

import pytest

from lamina.sandbox.network import EgressNetwork, Lease
from lamina.worker.stems import _attach


class SlowNetwork:
    """Attaches once `go` is set, as the kernel takes its time over a veth pair."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.released: list[Lease] = []

    def attach(self, pid: int) -> Lease:
        self.go.wait(5)
        return Lease(f"10.0.0.{pid}", 24, "10.0.0.1", f"veth{pid}")

    def release(self, lease: Lease) -> None:
        self.released.append(lease)


def test_the_attach_runs_off_the_event_loop() -> None:
    async def body() -> None:
        network = SlowNetwork()
        attaching = asyncio.ensure_future(_attach(cast("EgressNetwork", network), 7))
        await asyncio.sleep(0.05)  # the loop runs on while the thread waits
        assert not attaching.done()
        network.go.set()
        assert (await attaching).address == "10.0.0.7"
        assert network.released == []

    asyncio.run(body())


def test_a_caller_that_gives_up_gives_the_lease_back() -> None:
    async def body() -> None:
        network = SlowNetwork()
        attaching = asyncio.ensure_future(_attach(cast("EgressNetwork", network), 8))
        await asyncio.sleep(0.01)
        attaching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attaching
        network.go.set()  # the thread finishes its attach after the caller left
        for _ in range(100):
            if network.released:
                break
            await asyncio.sleep(0.01)
        assert [lease.address for lease in network.released] == ["10.0.0.8"]

    asyncio.run(body())
