"""Per-version pools of execution environments.

An environment serves one invocation at a time. An invocation takes an idle environment of
its version (warm) or launches a new one (cold): concurrency scales out on demand. Idle
environments are reaped after the keep-alive; a new revision of a version retires the pool:
its idle environments go at once, busy ones when their invocation ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lamina.worker.environment import Environment, EnvState
from lamina.worker.invocation import InvokeRequest, InvokeResult, Target

log = logging.getLogger(__name__)

Launch = Callable[[Target], Awaitable[Environment]]
Key = tuple[str, str, str]


@dataclass(slots=True)
class _Pool:
    revision: str
    idle: list[Environment] = field(default_factory=list)
    busy: set[Environment] = field(default_factory=set)
    retired: bool = False


class Scheduler:
    """Owns every environment; `close()` destroys them all."""

    def __init__(self, launch: Launch, keepalive_s: float) -> None:
        self._launch = launch
        self._keepalive = keepalive_s
        self._pools: dict[Key, _Pool] = {}
        self._retired: list[_Pool] = []
        self._reaper: asyncio.Task[None] | None = None
        self._destroying: set[asyncio.Task[None]] = set()  # retired idle environments

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def invoke(self, target: Target, request: InvokeRequest) -> InvokeResult:
        pool = self._pool_for(target)
        environment = pool.idle.pop() if pool.idle else None
        cold = environment is None
        if environment is None:
            environment = await self._launch(target)
            if environment.init_error is not None:
                return await environment.fail_first_invocation(request)
        pool.busy.add(environment)
        try:
            return await environment.invoke(request, cold)
        finally:
            pool.busy.discard(environment)
            await self._settle(pool, environment)

    async def _settle(self, pool: _Pool, environment: Environment) -> None:
        if environment.state is EnvState.IDLE and not pool.retired:
            pool.idle.append(environment)
        else:
            await environment.destroy()

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
            task = asyncio.get_running_loop().create_task(environment.destroy())
            self._destroying.add(task)
            task.add_done_callback(self._destroying.discard)

    def retire_function(self, region: str, name: str) -> None:
        """Code or configuration changed, or the function is gone: no more warm reuse."""
        for key in [k for k in self._pools if k[:2] == (region, name)]:
            self._retire(self._pools.pop(key))

    def stats(self) -> dict[str, int]:
        idle = sum(len(p.idle) for p in self._pools.values())
        busy = sum(len(p.busy) for p in self._pools.values())
        return {"idle": idle, "busy": busy}

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self._keepalive / 2, 1.0))
        while True:
            await asyncio.sleep(interval)
            await self.reap_idle()

    async def reap_idle(self) -> None:
        cutoff = time.monotonic() - self._keepalive
        for pool in self._pools.values():
            stale = [e for e in pool.idle if e.last_used < cutoff]
            if stale:
                pool.idle = [e for e in pool.idle if e.last_used >= cutoff]
                for environment in stale:
                    await environment.destroy()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        environments = [e for p in self._pools.values() for e in (*p.idle, *p.busy)]
        self._pools.clear()
        await asyncio.gather(
            *self._destroying, *(e.destroy() for e in environments), return_exceptions=True
        )
