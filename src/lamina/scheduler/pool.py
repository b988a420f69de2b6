"""Per-version pools of execution environments.

An environment serves one invocation at a time. An invocation takes an idle environment of
its version (warm) or launches a new one (cold): concurrency scales out on demand. While its
launch runs, the invocation also waits in line for an environment of its version that finishes
an invocation; whichever comes first serves it, and a launch that lost the race joins the idle
environments. Under a burst, requests then do not queue behind slow launches while warm
environments sit idle. (AWS's lifecycle documentation: "If a pre-initialized execution
environment becomes available while Lambda is initializing a new execution environment to
process an invocation, Lambda can use the pre-initialized execution environment.") When no
environment of the version is busy or being launched, none could come sooner: the invocation
is then sent with the launch and runs as soon as init ends (Environment.send_first). Idle
environments are reaped after the keep-alive; a new revision of a version retires the pool:
its idle environments go at once, busy ones when their invocation ends.

Provisioned concurrency keeps a set number of environments of a version initialized ahead of
demand (with AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency). Invocations take them
first, their first invocation shows no init, keep-alive never reaps them, one that dies is
replaced, and changing the number scales them up or down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from lamina.errors import LaunchNotNeeded
from lamina.worker.environment import Environment, EnvState
from lamina.worker.invocation import InvokeRequest, InvokeResult, Target

log = logging.getLogger(__name__)


class Launch(Protocol):
    """Launches an environment. `wanted` says whether it is still wanted (a launch that waits
    for its turn checks it and gives up with LaunchNotNeeded before it makes anything); with
    `first`, that invocation may be sent ahead and run as soon as init ends."""

    def __call__(
        self, target: Target, wanted: Callable[[], bool], first: InvokeRequest | None = None
    ) -> Awaitable[Environment]: ...


# Called before an on-demand launch; raises to refuse it (the scaling rate).
LaunchGate = Callable[[Target], None]
Key = tuple[str, str, str]
# Told of every invocation an environment ran: (key, duration s, init s if cold, error, cold).
Observer = Callable[[Key, float, float | None, bool, bool], None]


@dataclass(slots=True)
class _Pool:
    revision: str
    idle: list[Environment] = field(default_factory=list)
    busy: set[Environment] = field(default_factory=set)
    retired: bool = False
    # Invocations waiting for their launch, oldest first: a settling environment goes to them.
    waiting: deque[asyncio.Future[Environment]] = field(default_factory=deque)
    launching: int = 0  # launches not yet finished


@dataclass(slots=True)
class _Provisioned:
    """The provisioned environments of one version."""

    target: Target  # initialization type provisioned-concurrency
    want: int
    idle: list[Environment] = field(default_factory=list)
    busy: set[Environment] = field(default_factory=set)
    starting: int = 0
    failure: str | None = None  # why the last launch failed (its init error)

    @property
    def ready(self) -> int:
        return len(self.idle) + len(self.busy)


class Scheduler:
    """Owns every environment; `close()` destroys them all."""

    def __init__(self, launch: Launch, keepalive_s: float) -> None:
        self._launch = launch
        self._keepalive = keepalive_s
        self._gate: LaunchGate | None = None
        self._observe: Observer | None = None
        self._pools: dict[Key, _Pool] = {}
        self._provisioned: dict[Key, _Provisioned] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # teardowns and provisioned launches
        self._closing = False

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    def gate_launches(self, gate: LaunchGate) -> None:
        self._gate = gate

    def observe_invocations(self, observer: Observer) -> None:
        self._observe = observer

    # --- invocations ---------------------------------------------------------------------------

    def has_idle_provisioned(self, target: Target) -> bool:
        """Whether `invoke` would run on a provisioned environment now (it takes one before
        its first suspension, so a caller that checks and then awaits `invoke` agrees)."""
        provisioned = self._provisioned.get(target.key)
        return (
            provisioned is not None
            and bool(provisioned.idle)
            and provisioned.target.revision == target.revision
        )

    async def invoke(self, target: Target, request: InvokeRequest) -> InvokeResult:
        if self.has_idle_provisioned(target):
            return await self._invoke_provisioned(self._provisioned[target.key], request)
        pool = self._pool_for(target)
        environment = self._take_idle(pool)
        cold = environment is None
        if environment is None:
            if self._gate is not None:
                self._gate(target)
            if pool.busy or pool.waiting or pool.launching:
                environment, cold = await self._launch_or_wait(pool, target)
            else:
                environment, cold = await self._launch_with(pool, target, request), True
            if cold and environment.init_error is not None:
                result = await environment.fail_first_invocation(request)
                self._observed(target, environment, result, 0.0, True)
                return result
        pool.busy.add(environment)
        started = time.perf_counter()
        try:
            result = await environment.invoke(request, cold)
            self._observed(target, environment, result, time.perf_counter() - started, cold)
            return result
        finally:
            pool.busy.discard(environment)
            await self._settle(pool, environment)

    async def _launch_with(
        self, pool: _Pool, target: Target, request: InvokeRequest
    ) -> Environment:
        """An environment launched with `request` sent ahead (Environment.send_first), which
        saves a round trip through the server after init. Only when no environment of the
        version is busy or coming: none could serve the invocation sooner."""
        launch = self._start_launch(pool, target, _always, request)
        try:
            return await asyncio.shield(launch)
        except asyncio.CancelledError:  # it would run the invocation nobody waits for
            self._spawn(_destroy_when_launched(launch))
            raise

    def _start_launch(
        self,
        pool: _Pool,
        target: Target,
        wanted: Callable[[], bool],
        first: InvokeRequest | None = None,
    ) -> asyncio.Future[Environment]:
        """A launch in a task of its own, counted in `pool.launching` from now until it ends
        (an invocation in the same loop turn sees it)."""
        pool.launching += 1
        launch = asyncio.ensure_future(self._launch(target, wanted, first))
        launch.add_done_callback(functools.partial(_launch_ended, pool))
        return launch

    async def _launch_or_wait(self, pool: _Pool, target: Target) -> tuple[Environment, bool]:
        """(environment, cold): the one launched for this invocation, or one of its version
        that finished an invocation first (then the launch goes to the idle ones)."""
        handoff: asyncio.Future[Environment] = asyncio.get_running_loop().create_future()
        launch = self._start_launch(pool, target, lambda: not handoff.done())
        pool.waiting.append(handoff)
        try:
            await asyncio.wait((launch, handoff), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._abandon(pool, handoff, launch)
            raise
        with contextlib.suppress(ValueError):
            pool.waiting.remove(handoff)
        if handoff.done():
            self._adopt_later(pool, launch)
            return handoff.result(), False
        handoff.cancel()
        return launch.result(), True

    def _abandon(
        self,
        pool: _Pool,
        handoff: asyncio.Future[Environment],
        launch: asyncio.Future[Environment],
    ) -> None:
        """The waiting invocation was cancelled: give back what it was given or will get."""
        with contextlib.suppress(ValueError):
            pool.waiting.remove(handoff)
        if handoff.done() and not handoff.cancelled():
            self._release(pool, handoff.result())
        handoff.cancel()
        self._adopt_later(pool, launch)

    def _adopt_later(self, pool: _Pool, launch: asyncio.Future[Environment]) -> None:
        """A launch nobody waits for any more: its environment, if it got as far as making
        one, becomes an idle one."""

        async def adopt() -> None:
            try:
                environment = await launch
            except LaunchNotNeeded:
                return
            except Exception:
                log.exception("a launch made for a burst failed")
                return
            if environment.init_error is not None:
                # Its init failure is in the function's log; no invocation is left to get it.
                await environment.destroy()
                return
            self._release(pool, environment)

        self._spawn(adopt())

    def _release(self, pool: _Pool, environment: Environment) -> None:
        """An idle environment goes to the oldest waiting invocation, else to the idle list."""
        if pool.retired or self._closing or not environment.alive:
            self._destroy_later(environment)
            return
        while pool.waiting:
            waiter = pool.waiting.popleft()
            if not waiter.done():
                waiter.set_result(environment)
                return
        pool.idle.append(environment)

    def _take_idle(self, pool: _Pool) -> Environment | None:
        """The most recently used idle environment that is still alive (a custom runtime may
        exit between invocations: AWS then starts a new one instead of failing the next)."""
        while pool.idle:
            environment = pool.idle.pop()
            if environment.alive:
                return environment
            self._destroy_later(environment)
        return None

    async def _invoke_provisioned(
        self, provisioned: _Provisioned, request: InvokeRequest
    ) -> InvokeResult:
        environment = provisioned.idle.pop()
        provisioned.busy.add(environment)
        started = time.perf_counter()
        try:
            # Its init ran ahead: no Init Duration.
            result = await environment.invoke(request, False)
            self._observed(
                provisioned.target, environment, result, time.perf_counter() - started, False
            )
            return result
        finally:
            provisioned.busy.discard(environment)
            await self._settle_provisioned(provisioned, environment)

    def _observed(
        self,
        target: Target,
        environment: Environment,
        result: InvokeResult,
        duration_s: float,
        cold: bool,
    ) -> None:
        if self._observe is not None:
            init_ms = environment.init_ms if cold else None
            self._observe(
                target.key,
                duration_s,
                None if init_ms is None else init_ms / 1000,
                result.function_error is not None,
                cold,
            )

    async def _settle(self, pool: _Pool, environment: Environment) -> None:
        if environment.state is EnvState.IDLE and not pool.retired:
            self._release(pool, environment)
        else:
            self._destroy_later(environment)  # retired idle: its extensions get SHUTDOWN

    async def _settle_provisioned(
        self, provisioned: _Provisioned, environment: Environment
    ) -> None:
        current = self._provisioned.get(provisioned.target.key) is provisioned
        if environment.state is EnvState.IDLE and current and provisioned.ready < provisioned.want:
            provisioned.idle.append(environment)
            return
        await environment.destroy()
        if current:
            self._fill(provisioned)  # it died (timeout, crash): replace it

    def _pool_for(self, target: Target) -> _Pool:
        pool = self._pools.get(target.key)
        if pool is not None and pool.revision == target.revision:
            return pool
        if pool is not None:
            self._retire(pool)
        pool = self._pools[target.key] = _Pool(target.revision)
        return pool

    def _retire(self, pool: _Pool) -> None:
        pool.retired = True
        idle, pool.idle = pool.idle, []
        for environment in idle:
            self._destroy_later(environment)

    def _destroy_later(self, environment: Environment) -> None:
        """In the background: an idle environment gets its shutdown phase, others go at once."""
        self._spawn(environment.retire())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def retire_function(self, region: str, name: str) -> None:
        """Code or configuration changed, or the function is gone: no more warm reuse.

        Provisioned environments stay: only published versions have them, and those never
        change; ProvisionedService scales them away when their config goes (deleting the
        function deletes its configs). A published version's revision is its publish time, so
        a function re-created under the same name can never reach them."""
        for key in [k for k in self._pools if k[:2] == (region, name)]:
            self._retire(self._pools.pop(key))

    # --- provisioned concurrency ---------------------------------------------------------------

    def provision(self, target: Target, count: int) -> None:
        """Keep `count` environments of `target`'s version initialized (0 removes them all)."""
        key = target.key
        provisioned = self._provisioned.get(key)
        if provisioned is not None and (
            count <= 0 or provisioned.target.revision != target.revision
        ):
            self._unprovision(key)
            provisioned = None
        if count <= 0:
            return
        if provisioned is None:
            provisioned = self._provisioned[key] = _Provisioned(target, count)
        provisioned.target, provisioned.want, provisioned.failure = target, count, None
        while len(provisioned.idle) > 0 and provisioned.ready > count:
            self._destroy_later(provisioned.idle.pop())  # busy ones go when they finish
        self._fill(provisioned)

    def unprovision(self, key: Key) -> None:
        if key in self._provisioned:
            self._unprovision(key)

    def provisioned(self, key: Key) -> tuple[int, str | None]:
        """(initialized environments, why the last launch failed) of a version."""
        provisioned = self._provisioned.get(key)
        if provisioned is None:
            return 0, None
        return provisioned.ready, provisioned.failure

    def _unprovision(self, key: Key) -> None:
        provisioned = self._provisioned.pop(key)
        provisioned.want = 0
        idle, provisioned.idle = provisioned.idle, []
        for environment in idle:
            self._destroy_later(environment)

    def _fill(self, provisioned: _Provisioned) -> None:
        if self._closing or provisioned.failure is not None:
            return  # a failed init is reported (Status FAILED), not retried in a loop
        for _ in range(provisioned.want - provisioned.ready - provisioned.starting):
            provisioned.starting += 1
            self._spawn(self._launch_provisioned(provisioned))

    async def _launch_provisioned(self, provisioned: _Provisioned) -> None:
        try:
            environment = await self._launch(provisioned.target, _always)
        except Exception as error:
            log.exception("cannot launch a provisioned environment")
            provisioned.failure = f"{type(error).__name__}: {error}"
            return
        finally:
            provisioned.starting -= 1
        if environment.init_error is not None:
            provisioned.failure = _init_failure(environment.init_error)
            await environment.destroy()
            return
        current = self._provisioned.get(provisioned.target.key) is provisioned
        if self._closing or not current or provisioned.ready >= provisioned.want:
            await environment.destroy()
            return
        provisioned.idle.append(environment)

    # --- housekeeping --------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        idle = sum(len(p.idle) for p in self._pools.values())
        busy = sum(len(p.busy) for p in self._pools.values())
        provisioned = sum(p.ready for p in self._provisioned.values())
        starting = sum(p.starting for p in self._provisioned.values())
        return {"idle": idle, "busy": busy, "provisioned": provisioned, "provisioning": starting}

    def environments(self) -> dict[Key, tuple[int, int, int, int]]:
        """Per version: (busy, idle, provisioned busy, provisioned initialized)."""
        found: dict[Key, tuple[int, int, int, int]] = {}
        for key, pool in self._pools.items():
            if pool.busy or pool.idle:
                found[key] = (len(pool.busy), len(pool.idle), 0, 0)
        for key, provisioned in self._provisioned.items():
            busy, idle, _, _ = found.get(key, (0, 0, 0, 0))
            found[key] = (busy, idle, len(provisioned.busy), provisioned.ready)
        return found

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self._keepalive / 2, 1.0))
        while True:
            await asyncio.sleep(interval)
            await self.reap_idle()

    async def reap_idle(self) -> None:
        """On-demand environments idle past the keep-alive go; provisioned ones stay."""
        cutoff = time.monotonic() - self._keepalive
        for pool in self._pools.values():
            stale = [e for e in pool.idle if e.last_used < cutoff]
            if stale:
                pool.idle = [e for e in pool.idle if e.last_used >= cutoff]
                for environment in stale:
                    self._destroy_later(environment)

    async def close(self) -> None:
        self._closing = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # Launches in flight finish (bounded by the init timeout) and destroy what they made.
        await asyncio.gather(*self._background, return_exceptions=True)
        environments = [e for p in self._pools.values() for e in (*p.idle, *p.busy)]
        environments += [e for p in self._provisioned.values() for e in (*p.idle, *p.busy)]
        self._pools.clear()
        self._provisioned.clear()
        await asyncio.gather(
            *self._background, *(e.retire() for e in environments), return_exceptions=True
        )


def _always() -> bool:
    return True


def _launch_ended(pool: _Pool, _: object) -> None:
    pool.launching -= 1


async def _destroy_when_launched(launch: asyncio.Future[Environment]) -> None:
    try:
        environment = await launch
    except Exception:
        log.exception("a launch whose invocation was cancelled failed")
        return
    await environment.destroy()


def _init_failure(init_error: bytes) -> str:
    """StatusReason of a config whose environments cannot initialize."""
    try:
        document = json.loads(init_error)
        return f"{document.get('errorType', 'Runtime.Unknown')}: {document.get('errorMessage', '')}"
    except (ValueError, AttributeError):
        return "Runtime.Unknown: the function failed to initialize"
