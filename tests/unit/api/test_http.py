"""The coalescing transport under uvicorn's protocol: one write per loop turn, in order."""

from __future__ import annotations

import asyncio

from lamina.api.http import LARGE_WRITE, CoalescingTransport


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7


def test_writes_of_one_turn_go_out_as_one() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert real.writes == []
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"next")
        await asyncio.sleep(0)
        assert real.writes[1:] == [b"next"]
        assert transport.get_write_buffer_size() == 7  # the rest is the real transport's

    asyncio.run(body())


def test_a_large_write_goes_at_once_after_what_came_before() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        large = b"x" * LARGE_WRITE
        transport.write(b"head")
        transport.write(large)
        assert real.writes == [b"head", large]
        await asyncio.sleep(0)
        assert real.writes == [b"head", large]

    asyncio.run(body())


def test_close_sends_what_is_pending_first() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"last answer")
        transport.close()
        assert (real.writes, real.closed) == ([b"last answer"], True)
        await asyncio.sleep(0)
        assert real.writes == [b"last answer"]

    asyncio.run(body())
