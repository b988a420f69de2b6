"""Stems: environments made ahead of demand, up to the point where they need a function.

Joining cgroups is the slow part of making an environment on cgroup v1 (the first migration
after a quiet spell waits for an RCU grace period: 10-60 ms measured here), and namespaces
and the generic root cost another few milliseconds. A small pool per runtime keeps that off
the cold-start path; when a burst drains it, stems are made on demand, a few at a time: making
one is CPU work, and a burst that made them all at once would share the CPUs among all of them
and finish none early (made one after another, the first are serving while the rest are made).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

from lamina.errors import LaunchNotNeeded, SandboxStartError
from lamina.sandbox.cgroups import Cgroup, CgroupLimits, CgroupPool
from lamina.sandbox.network import EgressNetwork, Lease
from lamina.sandbox.spec import StemSpec
from lamina.sandbox.zygote import Zygote, pipe_pair
from lamina.worker.environment import encode_frame, read_frame
from lamina_inside import channel

log = logging.getLogger(__name__)

REFILL_DELAY_S = 0.02
STANDBY_TIMEOUT_S = 30.0  # making a stem takes ~10 ms; far longer means it is stuck
MAX_DEFAULT_POOL = 48  # 100 concurrent cold starts from zero then finish in ~0.35 s on 2 CPUs
MEMORY_PER_POOLED_STEM = 512 * 1024 * 1024  # of host memory: a ready stem costs ~3 MiB of it
# What a stem's cgroup starts with: a 128 MB function (the default) needs no write at launch.
STEM_LIMITS = CgroupLimits(memory_bytes=128 * 1024 * 1024, cpu_quota_us=None, pids_max=1024)
_ids = itertools.count(1)


def default_pool_size() -> int:
    """Stems per runtime when LAMINA_STEM_POOL is unset: one per 512 MiB of host memory (the
    ready stems of a runtime keep to ~0.6% of it), between 2 and 48."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(2, min(MAX_DEFAULT_POOL, memory // MEMORY_PER_POOLED_STEM))


@dataclass(slots=True)
class Stem:
    env_id: str
    zygote: Zygote
    pid: int
    cgroup: Cgroup | None
    reader: asyncio.StreamReader  # our end of its channel, made ahead of demand
    writer: asyncio.StreamWriter
    log_fd: int  # read end of its stdout/stderr
    lease: Lease | None = None  # its address on the egress network


class StemPool:
    """Ready stems for one zygote; `take` never waits for the pool, only for one spawn."""

    def __init__(
        self,
        zygote: Zygote,
        stem_spec: Callable[[str, tuple[str, ...], bool], StemSpec],
        cgroups: CgroupPool | None,
        size: int,
        making: asyncio.Semaphore,
        network: EgressNetwork | None = None,
    ) -> None:
        self._network = network
        self._making = making  # shared by every pool: stems made on demand at once
        self._zygote = zygote
        self._stem_spec = stem_spec
        self._cgroups = cgroups
        self._size = size
        self._ready: list[Stem] = []
        self._refilling: asyncio.Task[None] | None = None
        self._closed = False

    async def take(self, wanted: Callable[[], bool]) -> Stem:
        """A ready stem, else a new one once a making slot is free (`wanted` is asked then:
        LaunchNotNeeded if the caller no longer needs it)."""
        stem = self._ready.pop() if self._ready else None
        self._schedule_refill()
        if stem is not None:
            return stem
        async with self._making:
            if not wanted():
                raise LaunchNotNeeded("its invocation was served by another environment")
            return await self.make(ahead=False)

    async def make(self, ahead: bool = True) -> Stem:
        """A new stem; `ahead`: made ahead of demand, so it rehearses while it waits."""
        env_id = f"{next(_ids):x}-{secrets.token_hex(4)}"
        cgroup = self._cgroups.acquire(STEM_LIMITS) if self._cgroups is not None else None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_read, log_write = pipe_pair()
        procs = cgroup.procs_files if cgroup is not None else ()
        try:
            pid = await self._zygote.spawn(
                self._stem_spec(env_id, procs, ahead), theirs.fileno(), log_write
            )
        except BaseException:
            ours.close()
            os.close(log_read)
            self._release_cgroup(cgroup)
            raise
        finally:
            theirs.close()
            os.close(log_write)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        stem = Stem(env_id, self._zygote, pid, cgroup, reader, writer, log_read)
        try:
            if self._network is not None:
                lease = stem.lease = await _attach(self._network, pid)
                address = {
                    "address": lease.address,
                    "prefix": lease.prefix,
                    "gateway": lease.gateway,
                }
                writer.write(encode_frame(channel.PREPARE, address))
            await self._standby(stem)
        except BaseException:  # a failed setup, or the caller gave up: nothing is left behind
            await self.discard(stem)
            raise
        return stem

    async def _standby(self, stem: Stem) -> None:
        """Wait until the stem says it is ready (STANDBY): a stem is only counted, and a
        making slot only freed, once its work is done, not when its process exists."""
        try:
            frame = await asyncio.wait_for(read_frame(stem.reader), STANDBY_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            frame = None
        if frame is not None and frame.kind == channel.STANDBY:
            return
        if frame is not None and frame.kind == channel.INIT_ERROR:
            reason = str(frame.header.get("errorMessage", "unknown"))
        else:
            reason = "it ended" if frame is None else f"it sent frame kind {frame.kind}"
        raise SandboxStartError(f"a sandbox could not be made: {reason}")

    @property
    def closed(self) -> bool:
        return self._closed

    def fill(self) -> None:
        """Start making stems up to the pool size, in the background."""
        self._schedule_refill()

    def _schedule_refill(self) -> None:
        if self._closed or self._size == 0:
            return
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.get_running_loop().create_task(self._refill())

    async def _refill(self) -> None:
        # Let the cold start that took a stem finish first: making a stem costs the zygote
        # and the event loop a few milliseconds that would otherwise land on that request.
        await asyncio.sleep(REFILL_DELAY_S)
        await self._top_up()

    async def _top_up(self) -> None:
        while not self._closed and len(self._ready) < self._size:
            try:
                async with self._making:
                    stem = await self.make()
            except Exception:
                log.exception("could not make a stem; will retry on the next take")
                return
            if self.closed:  # close() ran while we waited for the zygote
                await self.discard(stem)
                return
            self._ready.append(stem)

    def _release_cgroup(self, cgroup: Cgroup | None) -> None:
        if cgroup is not None and self._cgroups is not None:
            self._cgroups.release(cgroup)

    async def discard(self, stem: Stem) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stem.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._zygote.exited(stem.env_id)), 5)
        self._zygote.forget(stem.env_id)
        stem.writer.close()
        os.close(stem.log_fd)
        self._release_cgroup(stem.cgroup)
        if stem.lease is not None and self._network is not None:
            self._network.release(stem.lease)

    async def close(self) -> None:
        self._closed = True
        if self._refilling is not None:
            self._refilling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refilling
        ready, self._ready = self._ready, []
        for stem in ready:
            await self.discard(stem)


async def _attach(network: EgressNetwork, pid: int) -> Lease:
    """The stem's veth pair, made in a worker thread: the kernel takes ~1 ms, which would
    stall the event loop. If the caller gives up meanwhile, the thread still finishes, and its
    lease goes back to the pool."""
    attaching = asyncio.ensure_future(asyncio.to_thread(network.attach, pid))
    try:
        return await asyncio.shield(attaching)
    except asyncio.CancelledError:

        def give_back(done: asyncio.Future[Lease]) -> None:
            if not done.cancelled() and done.exception() is None:
                network.release(done.result())

        attaching.add_done_callback(give_back)
        raise
