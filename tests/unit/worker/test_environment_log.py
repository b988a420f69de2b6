"""An environment's log pipe, read as the server reads it: a real pipe, the real event loop and
the shared one-shot epoll set; what reaches the log stream and each invocation's capture."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator

import pytest

from lamina.worker.logs import BUSY_DELAY_S, READ_DELAY_S, EnvironmentLog, end_line, start_line
from lamina.worker.pipes import PipeWatcher


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(
        self, group: str, stream: str, lines: list[tuple[int, str]], *, region: str | None = None
    ) -> None:
        self.lines.extend(text for _, text in lines)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):  # the log closes its end itself
            os.close(fd)


def run(body: Callable[[], Coroutine[None, None, None]]) -> None:
    asyncio.run(body())


@contextlib.asynccontextmanager
async def watched(read_end: int) -> AsyncIterator[tuple[EnvironmentLog, Sink, PipeWatcher]]:
    sink, watcher = Sink(), PipeWatcher()
    log = EnvironmentLog(read_end, watcher, sink, "g", "s")
    try:
        yield log, sink, watcher
    finally:
        log.close()
        watcher.close()


async def _invocation(log: EnvironmentLog, request_id: str, during: bytes, fd: int) -> bytes:
    log.platform(start_line(request_id, "$LATEST"))
    if during:
        os.write(fd, during)
        await asyncio.sleep(0)  # the loop sees the output (its read waits BUSY_DELAY_S)
        await asyncio.sleep(0)
    log.drain()
    log.platform(end_line(request_id))
    return log.take()


def test_output_between_invocations_reaches_the_stream_before_the_next_start(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            os.write(write_end, b"from a background thread\n")
            await asyncio.sleep(READ_DELAY_S * 5)
            assert sink.lines == ["from a background thread"]  # read while idle, not held back
            os.write(write_end, b"just before\n")
            await asyncio.sleep(0)  # the readiness is seen; its read waits READ_DELAY_S
            await asyncio.sleep(0)
            captured = await _invocation(log, "r1", b"", write_end)
            assert sink.lines[1:] == [
                "just before",
                "START RequestId: r1 Version: $LATEST",
                "END RequestId: r1",
            ]
            assert captured.endswith(b"START RequestId: r1 Version: $LATEST\nEND RequestId: r1\n")

    run(body)


def test_an_invocations_output_is_its_own_and_the_pipe_is_watched_again(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            first = await _invocation(log, "r1", b"one\ntwo\n", write_end)
            assert first == b"START RequestId: r1 Version: $LATEST\none\ntwo\nEND RequestId: r1\n"
            second = await _invocation(log, "r2", b"", write_end)
            assert second == b"START RequestId: r2 Version: $LATEST\nEND RequestId: r2\n"
            os.write(write_end, b"later\n")  # watched again after the output of r1
            await asyncio.sleep(READ_DELAY_S * 5)
            assert sink.lines[-1] == "later"

    run(body)


def test_a_long_invocations_output_flows_before_its_end(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            log.platform(start_line("r1", "$LATEST"))
            os.write(write_end, b"progress\n")
            await asyncio.sleep(BUSY_DELAY_S * 5)
            assert sink.lines == ["START RequestId: r1 Version: $LATEST", "progress"]

    run(body)


def test_the_end_of_the_pipe_closes_the_log(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (_, sink, watcher):
            os.write(write_end, b"last words, no newline")
            os.close(write_end)
            await asyncio.sleep(READ_DELAY_S * 5)
            assert sink.lines == ["last words, no newline"]
            with pytest.raises(OSError, match="Bad file descriptor"):
                os.fstat(read_end)  # closed by the log, and no longer watched
            assert watcher._callbacks == {}

    run(body)


BOUNDARY = b"\x00lamina-init-0123456789abcdef\x00"
START_R1 = "START RequestId: r1 Version: $LATEST"


@pytest.mark.parametrize("split", [None, 1, 7, len(BOUNDARY) - 1], ids=str)
def test_a_pipelined_invocations_start_goes_where_init_ended(
    pipe: tuple[int, int], split: int | None
) -> None:
    """The first invocation went out before init ended: what the runtime printed before its
    boundary is init's, what follows is the invocation's, even if the boundary arrives in two
    reads or within a partial line."""
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            log.expect_boundary(BOUNDARY, start_line("r1", "$LATEST"))
            written = b"imported\npartial" + BOUNDARY + b"handler ran\n"
            cut = written.index(BOUNDARY) + (split or 0)
            os.write(write_end, written[:cut] if split else written)
            log.drain()
            if split:
                os.write(write_end, written[cut:])
            log.began_at_boundary()
            log.drain()
            log.platform(end_line("r1"))
            assert sink.lines == [
                "imported",
                "partial",
                START_R1,
                "handler ran",
                "END RequestId: r1",
            ]
            assert log.take() == (  # the capture keeps the bytes as written (no newline added)
                b"imported\npartial" + START_R1.encode() + b"\nhandler ran\nEND RequestId: r1\n"
            )

    run(body)


def test_a_boundary_read_while_idle_places_start_before_ready(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            log.expect_boundary(BOUNDARY, start_line("r1", "$LATEST"))
            os.write(write_end, b"imported\n" + BOUNDARY + b"early\n")
            await asyncio.sleep(READ_DELAY_S * 5)  # read by the watch, before READY is seen
            assert sink.lines == ["imported", START_R1, "early"]
            log.began_at_boundary()
            assert sink.lines == ["imported", START_R1, "early"]  # no second START

    run(body)


def test_without_its_boundary_start_comes_at_ready(pipe: tuple[int, int]) -> None:
    """A function whose init redirected its output never shows the boundary: START is written
    when READY comes, after whatever was printed, and output that only looked like the start
    of a boundary is kept."""
    read_end, write_end = pipe

    async def body() -> None:
        async with watched(read_end) as (log, sink, _):
            log.expect_boundary(BOUNDARY, start_line("r1", "$LATEST"))
            os.write(write_end, b"imported\n" + BOUNDARY[:5])
            log.began_at_boundary()
            assert sink.lines == ["imported", BOUNDARY[:5].decode(), START_R1]

    run(body)
