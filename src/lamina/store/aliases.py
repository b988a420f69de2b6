"""The aliases of functions, on the shared SQLite `Database`.

Each alias is a JSON document keyed by (region, function, alias); deleting the function deletes
its aliases (foreign key cascade).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lamina.errors import FunctionNotFound
from lamina.model.alias import Alias
from lamina.store.database import Database

# change(current alias or None, the function's versions incl. $LATEST) -> new alias, or None to
# delete; it may raise to abort. The versions are read in the same transaction, so an alias can
# never be written pointing at a version deleted meanwhile.
Change = Callable[[Alias | None, frozenset[str]], Alias | None]


class AliasStore:
    """Reads and atomic writes of aliases (coroutines, like the Store: a PostgreSQL adapter will
    need them). Reads are served from memory: invoking through an alias looks it up on every
    call, this process is the database's only writer, and every write drops the cache."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._cache: dict[tuple[str, str], dict[str, Alias]] = {}
        database.on_write(self._cache.clear)

    async def get(self, region: str, function: str, name: str) -> Alias | None:
        return self._of(region, function).get(name)

    async def of_function(self, region: str, function: str) -> list[Alias]:
        """Every alias of the function, by name."""
        return list(self._of(region, function).values())

    async def update(self, region: str, function: str, name: str, change: Change) -> Alias | None:
        """Atomically read, transform and write one alias. Raises FunctionNotFound (name only)
        if the function is gone."""
        key = (region, function, name)
        with self._db.write():
            rows = self._db.all(
                "SELECT version FROM function_versions WHERE region = ? AND name = ?",
                (region, function),
            )
            if not rows:  # every function has $LATEST
                raise FunctionNotFound(function)
            row = self._db.one(
                "SELECT document FROM aliases WHERE region = ? AND name = ? AND alias = ?", key
            )
            current = _decode(region, function, name, row[0]) if row else None
            updated = change(current, frozenset(version for (version,) in rows))
            if updated is None:
                self._db.execute(
                    "DELETE FROM aliases WHERE region = ? AND name = ? AND alias = ?", key
                )
            else:
                self._db.execute(
                    "INSERT INTO aliases (region, name, alias, document) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (region, name, alias) DO UPDATE SET document = excluded.document",
                    (*key, _encode(updated)),
                )
        return updated

    def _of(self, region: str, function: str) -> dict[str, Alias]:
        found = self._cache.get((region, function))
        if found is None:
            rows = self._db.all(
                "SELECT alias, document FROM aliases WHERE region = ? AND name = ? ORDER BY alias",
                (region, function),
            )
            found = {name: _decode(region, function, name, doc) for name, doc in rows}
            self._cache[(region, function)] = found
        return found


def _encode(alias: Alias) -> str:
    document = {
        "version": alias.version,
        "revision_id": alias.revision_id,
        "description": alias.description,
        "weights": dict(alias.weights),
    }
    return orjson.dumps(document).decode()


def _decode(region: str, function: str, name: str, raw: str) -> Alias:
    document: dict[str, Any] = orjson.loads(raw)
    return Alias(
        region,
        function,
        name,
        document["version"],
        document["revision_id"],
        document["description"],
        document["weights"],
    )
