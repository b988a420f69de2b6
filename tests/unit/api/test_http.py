"""The coalescing transport under uvicorn's protocol: a response's head and body in one send."""

from __future__ import annotations

import asyncio

from lamina.api.http import CoalescingTransport


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sends: list[list[bytes]] = []  # each write or writelines call: one send
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sends.append([bytes(data)])

    def writelines(self, data: object) -> None:
        self.sends.append([bytes(part) for part in data])  # type: ignore[attr-defined]

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7


def test_a_write_goes_out_with_the_next_one_at_once() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert real.sends == []
        transport.write(b"body")
        assert real.sends == [[b"HTTP/1.1 200 OK\r\n\r\n", b"body"]]  # no wait for the turn
        await asyncio.sleep(0)
        assert len(real.sends) == 1
        assert transport.get_write_buffer_size() == 7  # the rest is the real transport's

    asyncio.run(body())


def test_a_lone_write_goes_out_at_the_end_of_the_turn() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0)
        assert real.sends == [[b"HTTP/1.1 100 Continue\r\n\r\n"]]
        transport.write(b"next head")
        transport.write(b"next body")
        transport.write(b"a third")
        await asyncio.sleep(0)
        assert real.sends[1:] == [[b"next head", b"next body"], [b"a third"]]

    asyncio.run(body())


def test_close_sends_what_is_held_first() -> None:
    async def body() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"last answer")
        transport.close()
        assert (real.sends, real.closed) == ([[b"last answer"]], True)
        await asyncio.sleep(0)
        assert real.sends == [[b"last answer"]]

    asyncio.run(body())
