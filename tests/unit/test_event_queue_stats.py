"""The async queue's counts while an event is throttled and retried: on a real SQLite file and
group commit, with a stand-in invoker that refuses the first attempts. Looked at on every turn
of the event loop, the event is always counted once (waiting or in flight), never twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from event_queue_support import event_queue

from lamina.control.invoke import Invocation
from lamina.errors import TooManyRequests
from lamina.ids import FunctionRef
from lamina.worker.invocation import InvokeResult

REF = FunctionRef("us-east-1", "000000000000", "f")


class RefusingInvoker:
    """Throttles the first `refusals` attempts, then runs the event."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.attempts = 0

    async def check(self, ref: FunctionRef) -> None:
        return None

    async def invoke(self, *_: Any) -> Invocation:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded")
        return Invocation(InvokeResult(b"{}", None, b""), "$LATEST", b"{}", None)


def test_a_retried_event_counts_once_on_every_turn(tmp_path: Path) -> None:
    async def body() -> list[tuple[int, int]]:
        invoker = RefusingInvoker(refusals=3)
        # backoff 1 ms, 2 ms, 4 ms
        async with event_queue(tmp_path, invoker, delay_scale=0.001) as queue:
            await queue.accept(REF, b"{}", "request-1")
            counts = []
            while True:
                stats = queue.stats(REF.region, REF.name)
                counts.append((stats.pending, stats.in_flight))
                done = stats.outcomes.get("succeeded") == 1
                if done and stats.pending + stats.in_flight == 0:
                    break
                await asyncio.sleep(0)  # every turn of the loop
        assert invoker.attempts == 4
        assert stats.outcomes.get("throttled") == 3
        return counts

    counts = asyncio.run(body())
    assert {pending + in_flight for pending, in_flight in counts[:-1]} == {1}, counts
