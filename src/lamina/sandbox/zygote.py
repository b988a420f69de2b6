"""Server side of a zygote: start it, ask it to spawn environments, learn how they end.

The asyncio server never forks Python code itself: the zygote is a separate single-threaded
process (lamina_inside.zygote) started with posix_spawn semantics by asyncio's subprocess
support, and talked to over a SOCK_SEQPACKET socketpair.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from lamina.errors import SandboxStartError
from lamina.sandbox.spec import StemSpec

log = logging.getLogger(__name__)

INSIDE_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # the dir holding lamina_inside
_BOOT = (
    "import sys; sys.path.insert(0, {root!r}); from lamina_inside import zygote; zygote.main({fd})"
)


class Zygote:
    """One running zygote process for one interpreter."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket) -> None:
        self._process = process
        self._control = control
        self._spawns: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[str, asyncio.Future[int]] = {}
        self._hello: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.prefix = ""
        self.version: tuple[int, int] = (0, 0)
        asyncio.get_running_loop().add_reader(control.fileno(), self._on_readable)

    @classmethod
    async def start(cls, interpreter: str) -> Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = await asyncio.create_subprocess_exec(
            interpreter,
            "-S",
            "-I",
            "-c",
            _BOOT.format(root=INSIDE_ROOT, fd=theirs.fileno()),
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
        )
        theirs.close()
        ours.setblocking(False)
        zygote = cls(process, ours)
        try:
            hello = await asyncio.wait_for(zygote._hello, timeout=30)
        except (TimeoutError, EOFError) as error:
            await zygote.close()
            raise SandboxStartError(f"zygote for {interpreter} did not start: {error}") from None
        zygote.prefix = hello["prefix"]
        zygote.version = (hello["version"][0], hello["version"][1])
        return zygote

    async def spawn(self, spec: StemSpec, channel_fd: int, log_fd: int) -> int:
        """Create an environment's stem; returns the pid of its init, which then waits for its
        specialization on the channel. Its exit is `exited(env_id)`."""
        loop = asyncio.get_running_loop()
        started: asyncio.Future[int] = loop.create_future()
        self._spawns[spec.env_id] = started
        self._exits[spec.env_id] = loop.create_future()
        message = json.dumps({"op": "spawn", "spec": spec.to_wire()}).encode()
        fds = array.array("i", [channel_fd, log_fd])
        try:
            self._control.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as error:
            self._spawns.pop(spec.env_id, None)
            self._exits.pop(spec.env_id, None)
            raise SandboxStartError(f"zygote unreachable: {error}") from None
        return await started

    def exited(self, env_id: str) -> asyncio.Future[int]:
        """Resolves with the exit code of the environment's init (negative: killed by signal)."""
        return self._exits[env_id]

    def forget(self, env_id: str) -> None:
        self._exits.pop(env_id, None)

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._control.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._fail_all("the zygote exited")
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "hello":
            if not self._hello.done():
                self._hello.set_result(event)
        elif kind == "spawned":
            _resolve(self._spawns.pop(event["env"], None), event["pid"])
        elif kind == "failed":
            future = self._spawns.pop(event["env"], None)
            self._exits.pop(event["env"], None)
            if future is not None and not future.done():
                future.set_exception(SandboxStartError(event["error"]))
        elif kind == "exited":
            _resolve(self._exits.get(event["env"]), event["status"])

    def _fail_all(self, reason: str) -> None:
        asyncio.get_running_loop().remove_reader(self._control.fileno())
        if not self._hello.done():
            self._hello.set_exception(EOFError(reason))
        for future in [*self._spawns.values()]:
            if not future.done():
                future.set_exception(SandboxStartError(reason))
        for future in self._exits.values():
            _resolve(future, -9)  # its environments are gone with it or will be swept
        self._spawns.clear()

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self._control.send(json.dumps({"op": "exit"}).encode())
        try:
            await asyncio.wait_for(self._process.wait(), timeout=5)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._control.fileno())
        self._control.close()


def _resolve(future: asyncio.Future[int] | None, value: int) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def pipe_pair() -> tuple[int, int]:
    """A pipe whose write end may be passed to an environment (read end stays ours)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    return read_end, write_end
