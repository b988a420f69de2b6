"""Group commit on a real SQLite file: a write is done once committed and fdatasynced; the
writes of one loop turn commit together, and their sync waits for the one in flight; a failing
write fails alone; a fast sync runs on the loop, a slow one on the helper thread; a write that
need not be durable waits a little to share a batch."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.store import group_commit
from lamina.store.database import Database
from lamina.store.group_commit import GroupCommit


class SlowSync:
    """os.fdatasync that waits for `release` and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.release.wait(5)


def _insert(value: int) -> Callable[[Database], None]:
    def step(db: Database) -> None:
        db.execute("INSERT INTO t (v) VALUES (?)", (value,))

    return step


def _values(path: Path) -> list[int]:
    db = Database(path)
    try:
        return [row[0] for row in db.execute("SELECT v FROM t ORDER BY v").fetchall()]
    finally:
        db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A database with one table of integers."""
    path = tmp_path / "state.db"
    setup = Database(path)
    with setup.write():
        setup.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    setup.close()
    return path


@pytest.fixture
def sync(monkeypatch: pytest.MonkeyPatch) -> SlowSync:
    slow = SlowSync()
    monkeypatch.setattr(os, "fdatasync", slow)
    return slow


def test_writes_of_one_turn_commit_together_and_wait_for_a_sync(path: Path, sync: SlowSync) -> None:

    async def body() -> None:
        commits = GroupCommit(path, inline_sync_limit_s=0.0)  # always on the helper thread
        commits.start()
        first = asyncio.ensure_future(commits.write(_insert(1)))
        await asyncio.sleep(0.05)
        assert _values(path) == [1]
        assert sync.calls == 1
        assert not first.done()  # committed, not yet synced
        behind = [asyncio.ensure_future(commits.write(_insert(v))) for v in (2, 3)]
        failing = asyncio.ensure_future(commits.write(_insert(1)))  # a duplicate key
        await asyncio.sleep(0.05)
        assert _values(path) == [1, 2, 3]  # one transaction for the turn, the duplicate out
        with pytest.raises(Exception, match="UNIQUE"):
            await failing
        assert sync.calls == 1  # their sync waits for the one in flight
        assert not any(write.done() for write in behind)
        sync.release.set()
        await first
        await asyncio.gather(*behind)
        assert sync.calls == 2
        await commits.close()

    asyncio.run(body())


def test_a_write_that_need_not_be_durable_returns_after_its_commit(
    path: Path, sync: SlowSync
) -> None:

    async def body() -> None:
        commits = GroupCommit(path, inline_sync_limit_s=0.0)
        commits.start()
        await asyncio.wait_for(commits.write(_insert(5), durable=False), 1)
        assert sync.calls == 0
        assert _values(path) == [5]
        sync.release.set()
        await commits.close()

    asyncio.run(body())


class TimedSync:
    """os.fdatasync that takes `seconds` and records the thread it ran on."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.threads: list[int] = []

    def __call__(self, fd: int) -> None:
        self.threads.append(threading.get_ident())
        time.sleep(self.seconds)


def test_the_sync_runs_on_the_loop_while_fast_and_on_the_helper_thread_while_slow(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed = TimedSync()
    monkeypatch.setattr(os, "fdatasync", timed)

    async def body() -> None:
        loop_thread = threading.get_ident()
        commits = GroupCommit(path, inline_sync_limit_s=0.01)
        commits.start()
        for value in range(3):
            await commits.write(_insert(value))
        assert timed.threads == [loop_thread] * 3
        timed.seconds = 0.03  # a slow disk: the average passes the limit within two syncs
        for value in range(3, 6):
            await commits.write(_insert(value))
        assert timed.threads[3] == loop_thread  # the first slow one could not be foreseen
        assert timed.threads[5] != loop_thread
        timed.seconds = 0.0  # fast again: back on the loop once the average falls
        for value in range(6, 16):
            await commits.write(_insert(value))
        assert timed.threads[-1] == loop_thread
        assert _values(path) == list(range(16))
        await commits.close()

    asyncio.run(body())


def test_a_write_that_need_not_be_durable_waits_to_share_a_durable_batch(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    commit_batch = group_commit._commit

    def counted(db: Database, batch: list[group_commit.Pending]) -> list[Exception | None]:
        batches.append(len(batch))
        return commit_batch(db, batch)

    monkeypatch.setattr(group_commit, "_commit", counted)

    async def body() -> None:
        commits = GroupCommit(path, linger_s=0.3)
        commits.start()
        lingering = asyncio.ensure_future(commits.write(_insert(1), durable=False))
        await asyncio.sleep(0.05)
        assert batches == []  # waiting for company
        assert not lingering.done()
        await commits.write(_insert(2))
        await lingering
        assert batches == [2]  # one transaction for both
        started = time.monotonic()
        await commits.write(_insert(3), durable=False)  # none comes: it commits alone
        assert batches == [2, 1]
        assert time.monotonic() - started >= 0.3
        assert _values(path) == [1, 2, 3]
        await commits.close()

    asyncio.run(body())
