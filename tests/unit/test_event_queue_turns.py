"""Each function's async events have their own queue (as in AWS): a backlog of one function's
slow events never holds up another function's events, each function runs at most
`max_in_flight` at once, and functions take turns for the server's `max_total` slots. On a
real SQLite file and group commit, with a stand-in invoker whose invocations wait for a go."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from event_queue_support import ACCOUNT, event_queue

from lamina.control.invoke import Invocation
from lamina.ids import FunctionRef
from lamina.worker.invocation import InvokeResult

SLOW = FunctionRef("us-east-1", ACCOUNT, "slow")
QUICK = FunctionRef("us-east-1", ACCOUNT, "quick")


class HeldInvoker:
    """Invocations of `held` functions wait for `go`; the others return at once."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.go = asyncio.Event()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()  # the most invocations of each at once
        self.most_total = 0  # the most invocations at once
        self.done: Counter[str] = Counter()

    async def check(self, ref: FunctionRef) -> None:
        return None

    async def invoke(self, ref: FunctionRef, *_: Any) -> Invocation:
        self.running[ref.name] += 1
        self.most[ref.name] = max(self.most[ref.name], self.running[ref.name])
        self.most_total = max(self.most_total, sum(self.running.values()))
        try:
            if ref.name in self.held:
                await self.go.wait()
        finally:
            self.running[ref.name] -= 1
        self.done[ref.name] += 1
        return Invocation(InvokeResult(b"{}", None, b""), "$LATEST", b"{}", None)


async def _settled(condition: Any) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)  # polling a stand-in's counters: nothing to wait on
    raise AssertionError("not settled")


def test_a_backlog_of_one_function_does_not_hold_up_another(tmp_path: Path) -> None:
    async def body() -> None:
        invoker = HeldInvoker({"slow"})
        async with event_queue(tmp_path, invoker) as queue:
            for index in range(48):
                await queue.accept(SLOW, b"{}", f"slow-{index}")
            await queue.accept(QUICK, b"{}", "quick-0")
            await _settled(lambda: invoker.done["quick"] == 1)  # every slow one still waits
            stats = queue.stats(SLOW.region, SLOW.name)
            assert (stats.in_flight, stats.pending) == (16, 32)
            invoker.go.set()
            await _settled(lambda: invoker.done["slow"] == 48)
        assert invoker.most["slow"] == 16  # max_in_flight per function

    asyncio.run(body())


def test_functions_take_turns_for_the_servers_slots(tmp_path: Path) -> None:
    async def body() -> None:
        invoker = HeldInvoker({"slow", "quick"})
        async with event_queue(tmp_path, invoker, max_in_flight=3, max_total=4) as queue:
            for index in range(10):
                await queue.accept(SLOW, b"{}", f"slow-{index}")
            for index in range(2):
                await queue.accept(QUICK, b"{}", f"quick-{index}")
            await _settled(lambda: sum(invoker.running.values()) == 4)
            assert (invoker.running["slow"], invoker.running["quick"]) == (3, 1)
            invoker.go.set()
            await _settled(lambda: invoker.done == Counter({"slow": 10, "quick": 2}))
        assert (invoker.most["slow"], invoker.most_total) == (3, 4)

    asyncio.run(body())


def test_reserved_concurrency_bounds_a_functions_events_in_flight(tmp_path: Path) -> None:
    """More would only be throttled and backed off."""

    async def body() -> None:
        invoker = HeldInvoker({"slow", "quick"})
        reserved = {"slow": 2, "quick": 1}
        async with event_queue(tmp_path, invoker, reserved=reserved) as queue:
            for index in range(6):
                await queue.accept(SLOW, b"{}", f"slow-{index}")
                await queue.accept(QUICK, b"{}", f"quick-{index}")
            await _settled(lambda: sum(invoker.running.values()) == 3)
            assert (invoker.running["slow"], invoker.running["quick"]) == (2, 1)
            invoker.go.set()
            await _settled(lambda: invoker.done == Counter({"slow": 6, "quick": 6}))
        assert (invoker.most["slow"], invoker.most["quick"]) == (2, 1)

    asyncio.run(body())
