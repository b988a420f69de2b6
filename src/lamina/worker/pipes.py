"""One epoll set for every environment's log pipe, watched by the event loop as a single fd.

Each pipe is armed one-shot: once it reports readable the kernel disarms it, and re-arming is
one epoll_ctl. The loop's own add_reader / remove_reader would cost four system calls each
under uvloop (it makes a new poll handle every time), and a busy pipe is watched and left alone
in turns.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable

_ARMED = select.EPOLLIN | select.EPOLLONESHOT


class PipeWatcher:
    def __init__(self) -> None:
        self._epoll: select.epoll | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: dict[int, Callable[[], None]] = {}

    def add(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Watch `fd`, armed: `on_readable` is called once it has data (or its end), then the
        pipe is disarmed until `arm`."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._epoll.fileno(), self._dispatch)
        self._callbacks[fd] = on_readable
        self._epoll.register(fd, _ARMED)

    def arm(self, fd: int) -> None:
        if self._epoll is not None and fd in self._callbacks:
            self._epoll.modify(fd, _ARMED)

    def disarm(self, fd: int) -> None:
        if self._epoll is not None and fd in self._callbacks:
            self._epoll.modify(fd, select.EPOLLONESHOT)  # no events (the kernel adds HUP/ERR)

    def remove(self, fd: int) -> None:
        """Stop watching `fd` (before it is closed)."""
        if self._callbacks.pop(fd, None) is not None and self._epoll is not None:
            self._epoll.unregister(fd)

    def close(self) -> None:
        """Stop watching every pipe (the server is closing)."""
        if self._epoll is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None
        self._callbacks.clear()

    def _dispatch(self) -> None:
        assert self._epoll is not None
        for fd, _ in self._epoll.poll(0):
            callback = self._callbacks.get(fd)
            if callback is not None:
                callback()
