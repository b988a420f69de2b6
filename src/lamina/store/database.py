"""One SQLite database file: the connection, its migrations, and atomic write transactions.

Every embedded store (functions, aliases, function settings, the async event queue) shares one
`Database`, so foreign keys cascade across them and one process is the only writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lamina.store.migrations import MIGRATIONS


class Database:
    """The connection and its write discipline. Calls run on the event loop thread: each is a
    few index lookups, cheaper than a hop to a worker thread."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self._on_write: list[Callable[[], None]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed change survives power loss. NORMAL leaves the WAL's fsync to the
        # caller (GroupCommit syncs it off the event loop before it reports a commit).
        self._db.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def on_write(self, invalidate: Callable[[], None]) -> None:
        """Call `invalidate` before every write transaction (read caches)."""
        self._on_write.append(invalidate)

    def _migrate(self) -> None:
        with self.write():
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            with self.write():
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def write(self, invalidate: bool = True) -> Iterator[None]:
        """One atomic transaction (BEGIN IMMEDIATE: read-modify-write cannot interleave).

        `invalidate=False` keeps the read caches: only for writes to tables nothing caches
        (the async event queue), which would otherwise empty them thousands of times a second.
        """
        for drop in self._on_write if invalidate else ():
            drop()  # cheap, and correct whatever the write touches
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        return self._db.executemany(sql, rows)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: one failing step of a batch rolls back only itself."""
        self._db.execute("SAVEPOINT step")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO step")
            self._db.execute("RELEASE step")
            raise
        self._db.execute("RELEASE step")

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first row, or None."""
        return self._db.execute(sql, args).fetchone()

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._db.execute(sql, args).fetchall()

    @property
    def wal_path(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    def close(self) -> None:
        self._db.close()
