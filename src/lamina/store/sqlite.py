"""The embedded Store of functions and versions, on the shared SQLite `Database`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson

from lamina.errors import FunctionExists, FunctionNotFound
from lamina.model.function import LATEST, Function, FunctionVersion, State
from lamina.store.codec import decode_version, encode_version
from lamina.store.database import Database
from lamina.store.layers import LAYER_CODE_IN_USE
from lamina.store.protocol import Published

_SELECT = (
    "SELECT f.region, f.name, f.tags, v.document FROM functions f "
    "JOIN function_versions v ON v.region = f.region AND v.name = f.name AND v.version = ? "
)


class SqliteStore:
    """Store backed by one SQLite database file.

    Reads of a single function are served from memory after the first: this process is the
    database's only writer, and every write below drops the function from the cache.
    """

    def __init__(self, database: Database | Path) -> None:
        self._cache: dict[tuple[str, str], Function] = {}
        self.database = database if isinstance(database, Database) else Database(database)
        self.database.on_write(self._cache.clear)
        self._db = self.database
        self._write = self.database.write

    @property
    def schema_version(self) -> int:
        return self.database.schema_version

    @staticmethod
    def _row(row: tuple[str, str, str, str]) -> Function:
        region, name, tags, document = row
        return Function(region, name, decode_version(document), orjson.loads(tags))

    def _get(self, region: str, name: str) -> Function | None:
        row = self._db.execute(
            _SELECT + "WHERE f.region = ? AND f.name = ?", (LATEST, region, name)
        ).fetchone()
        return self._row(row) if row else None

    def _put_latest(self, function: Function) -> None:
        self._put_version(function.region, function.name, function.latest)

    def _put_version(self, region: str, name: str, version: FunctionVersion) -> None:
        self._db.execute(
            "INSERT INTO function_versions "
            "(region, name, version, state, code_sha256, code_size, document) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (region, name, version) DO UPDATE SET state = excluded.state, "
            "code_sha256 = excluded.code_sha256, code_size = excluded.code_size, "
            "document = excluded.document",
            (
                region,
                name,
                version.version,
                version.status.state.value,
                version.code.sha256_hex,
                version.code.size,
                encode_version(version).decode(),
            ),
        )

    async def create_function(self, function: Function) -> None:
        with self._write():
            try:
                self._db.execute(
                    "INSERT INTO functions (region, name, tags) VALUES (?, ?, ?)",
                    (function.region, function.name, orjson.dumps(dict(function.tags)).decode()),
                )
            except sqlite3.IntegrityError:
                raise FunctionExists(function.name) from None
            self._put_latest(function)

    async def get_function(self, region: str, name: str) -> Function | None:
        cached = self._cache.get((region, name))
        if cached is not None:
            return cached
        found = self._get(region, name)
        if found is not None:
            self._cache[(region, name)] = found
        return found

    async def list_functions(self, region: str, after: str | None, limit: int) -> list[Function]:
        rows = self._db.execute(
            _SELECT + "WHERE f.region = ? AND f.name > ? ORDER BY f.name LIMIT ?",
            (LATEST, region, after or "", limit),
        ).fetchall()
        return [self._row(row) for row in rows]

    async def update_function(
        self, region: str, name: str, change: Callable[[Function], Function]
    ) -> Function:
        with self._write():
            current = self._get(region, name)
            if current is None:
                raise FunctionNotFound(name)
            updated = change(current)
            self._db.execute(
                "UPDATE functions SET tags = ? WHERE region = ? AND name = ?",
                (orjson.dumps(dict(updated.tags)).decode(), region, name),
            )
            self._put_latest(updated)
        return updated

    async def delete_function(self, region: str, name: str) -> Function | None:
        with self._write():
            current = self._get(region, name)
            if current is not None:
                self._db.execute(
                    "DELETE FROM functions WHERE region = ? AND name = ?", (region, name)
                )
        return current

    def _versions(
        self, region: str, name: str, clause: str, *args: object
    ) -> list[FunctionVersion]:
        rows = self._db.execute(
            "SELECT document FROM function_versions WHERE region = ? AND name = ? " + clause,
            (region, name, *args),
        ).fetchall()
        return [decode_version(row[0]) for row in rows]

    async def publish_version(
        self,
        region: str,
        name: str,
        make: Callable[[Function, FunctionVersion | None, int], Published | None],
    ) -> FunctionVersion:
        with self._write():
            current = self._get(region, name)
            if current is None:
                raise FunctionNotFound(name)
            (last,) = self._db.execute(
                "SELECT last_version FROM functions WHERE region = ? AND name = ?", (region, name)
            ).fetchone()
            found = self._versions(region, name, "AND version = ?", str(last)) if last else []
            previous = found[0] if found else None
            published = make(current, previous, last + 1)
            if published is None:
                if previous is None:
                    raise ValueError("publish_version: nothing to return without a version")
                return previous
            version = published.version
            self._put_version(region, name, version)
            self._put_version(region, name, published.latest)
            self._db.execute(
                "UPDATE functions SET last_version = ? WHERE region = ? AND name = ?",
                (last + 1, region, name),
            )
        return version

    async def get_version(self, region: str, name: str, version: str) -> FunctionVersion | None:
        found = self._versions(region, name, "AND version = ?", version)
        return found[0] if found else None

    async def list_versions(self, region: str, name: str) -> list[FunctionVersion]:
        # $LATEST sorts first ('$' < digits); numbers sort numerically after it.
        return self._versions(
            region, name, "ORDER BY version != ?, CAST(version AS INTEGER)", LATEST
        )

    async def delete_version(self, region: str, name: str, version: str) -> FunctionVersion | None:
        with self._write():
            found = self._versions(region, name, "AND version = ?", version)
            if found:
                self._db.execute(
                    "DELETE FROM function_versions WHERE region = ? AND name = ? AND version = ?",
                    (region, name, version),
                )
        return found[0] if found else None

    async def functions_in_state(self, state: State) -> list[Function]:
        rows = self._db.execute(
            _SELECT + "WHERE v.state = ? ORDER BY f.region, f.name", (LATEST, state.value)
        ).fetchall()
        return [self._row(row) for row in rows]

    async def usage(self, region: str) -> tuple[int, int]:
        count, size = self._db.execute(
            "SELECT COUNT(DISTINCT name), COALESCE(SUM(code_size), 0) FROM function_versions "
            "WHERE region = ?",
            (region,),
        ).fetchone()
        return int(count), int(size)

    async def code_in_use(self, sha256_hex: str) -> bool:
        """Whether a function version or a layer version (live, or deleted but still used by
        a function) holds this code."""
        row = self._db.execute(
            "SELECT 1 FROM function_versions WHERE code_sha256 = ? LIMIT 1", (sha256_hex,)
        ).fetchone()
        if row is not None:
            return True
        return self._db.execute(LAYER_CODE_IN_USE, (sha256_hex,)).fetchone() is not None

    async def close(self) -> None:
        self.database.close()
