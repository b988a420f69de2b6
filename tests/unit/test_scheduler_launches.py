"""The scheduler's choice for an invocation that finds no idle environment: send it with the
launch (nothing of its version is busy or coming, so nothing could serve it sooner), or launch
and also wait in line for an environment that frees up (a burst). Environments here are
stand-ins that record what they run; the real ones are exercised by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from lamina.scheduler.pool import Scheduler
from lamina.worker.environment import Environment, EnvState
from lamina.worker.invocation import InvokeRequest, InvokeResult, Target

TARGET = Target(
    region="us-east-1",
    function_name="f",
    version="$LATEST",
    revision="r1",
    runtime="python3.11",
    handler="app.handler",
    code_dir="/code",
    memory_mb=128,
    timeout_s=3,
    ephemeral_mb=512,
    environment={},
    log_group="/aws/lambda/f",
)


class StandIn:
    """Just what the scheduler asks of an environment."""

    def __init__(self, hold: asyncio.Event) -> None:
        self.state = EnvState.IDLE
        self.alive = True
        self.init_error: bytes | None = None
        self.init_ms = 1.0
        self.last_used = 0.0
        self.ran: list[str] = []
        self._hold = hold

    async def invoke(self, request: InvokeRequest, cold: bool) -> InvokeResult:
        self.ran.append(request.request_id)
        await self._hold.wait()
        return InvokeResult(b"{}", None, b"", cold_start=cold)

    async def retire(self) -> None:
        self.state = EnvState.DEAD

    async def destroy(self) -> None:
        self.state = EnvState.DEAD


class Launches:
    """A Launch that records its `first` argument and finishes when `done` is set."""

    def __init__(self, hold: asyncio.Event) -> None:
        self.firsts: list[str | None] = []
        self.done = asyncio.Event()
        self._hold = hold

    async def __call__(
        self, target: Target, wanted: Callable[[], bool], first: InvokeRequest | None = None
    ) -> Environment:
        self.firsts.append(None if first is None else first.request_id)
        await self.done.wait()
        return cast("Environment", StandIn(self._hold))


def request(request_id: str) -> InvokeRequest:
    return InvokeRequest(request_id, b"{}", "arn:aws:lambda:us-east-1:000000000000:function:f")


def run_two(first_gap: bool) -> list[str | None]:
    """Two invocations of a version with no environment, the second in the same loop turn as
    the first or once the first's launch is under way; the `first` each launch was given."""

    async def body() -> list[str | None]:
        hold = asyncio.Event()
        launches = Launches(hold)
        scheduler = Scheduler(launches, keepalive_s=60)
        one = asyncio.ensure_future(scheduler.invoke(TARGET, request("one")))
        if first_gap:
            await asyncio.sleep(0.01)
        two = asyncio.ensure_future(scheduler.invoke(TARGET, request("two")))
        await asyncio.sleep(0.01)
        launches.done.set()
        hold.set()
        await asyncio.gather(one, two)
        await scheduler.close()
        return launches.firsts

    return asyncio.run(body())


def test_a_lone_invocation_goes_with_its_launch_and_a_second_one_waits_in_line() -> None:
    assert run_two(first_gap=True) == ["one", None]


def test_a_launch_started_in_the_same_loop_turn_counts_at_once() -> None:
    assert run_two(first_gap=False) == ["one", None]


def test_an_invocation_while_one_of_its_version_runs_waits_in_line() -> None:
    async def body() -> list[str | None]:
        hold = asyncio.Event()
        launches = Launches(hold)
        launches.done.set()
        scheduler = Scheduler(launches, keepalive_s=60)
        busy = asyncio.ensure_future(scheduler.invoke(TARGET, request("busy")))
        await asyncio.sleep(0.01)  # launched with "busy" sent ahead; now running
        second = asyncio.ensure_future(scheduler.invoke(TARGET, request("second")))
        await asyncio.sleep(0.01)
        hold.set()
        await asyncio.gather(busy, second)
        await scheduler.close()
        return launches.firsts

    assert asyncio.run(body()) == ["busy", None]
