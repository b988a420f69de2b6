"""Per-function settings that are not part of a version's configuration.

Each is a JSON document keyed by (region, function, kind, qualifier); the qualifier is '' for a
setting of the whole function (reserved concurrency) and a version or alias otherwise
(provisioned concurrency, event invoke configs). Deleting the function deletes its settings.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import orjson

from lamina.errors import FunctionNotFound
from lamina.store.database import Database

Document = dict[str, Any]


class SettingKind(enum.StrEnum):
    RESERVED_CONCURRENCY = "reserved-concurrency"
    PROVISIONED_CONCURRENCY = "provisioned-concurrency"
    EVENT_INVOKE_CONFIG = "event-invoke-config"


class FunctionSettings:
    """Reads and atomic writes of per-function settings (coroutines, like the Store: a
    PostgreSQL adapter will need them). Cached in memory: this process is the
    database's only writer, and every write drops the cache."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._cache: dict[tuple[str, str, str, str], Document | None] = {}
        database.on_write(self._cache.clear)

    async def get(
        self, region: str, name: str, kind: SettingKind, qualifier: str = ""
    ) -> Document | None:
        key = (region, name, kind.value, qualifier)
        if key in self._cache:
            return self._cache[key]
        row = self._db.one(
            "SELECT document FROM function_settings "
            "WHERE region = ? AND name = ? AND kind = ? AND qualifier = ?",
            key,
        )
        found: Document | None = orjson.loads(row[0]) if row else None
        self._cache[key] = found
        return found

    async def of_function(self, region: str, name: str, kind: SettingKind) -> dict[str, Document]:
        """Every setting of that kind of one function, by qualifier."""
        rows = self._db.all(
            "SELECT qualifier, document FROM function_settings "
            "WHERE region = ? AND name = ? AND kind = ? ORDER BY qualifier",
            (region, name, kind.value),
        )
        return {qualifier: orjson.loads(document) for qualifier, document in rows}

    async def of_kind(self, kind: SettingKind) -> list[tuple[str, str, str, Document]]:
        """Every setting of that kind: (region, name, qualifier, document) (startup recovery,
        account-wide sums)."""
        rows = self._db.all(
            "SELECT region, name, qualifier, document FROM function_settings WHERE kind = ? "
            "ORDER BY region, name, qualifier",
            (kind.value,),
        )
        return [(r, n, q, orjson.loads(d)) for r, n, q, d in rows]

    async def update(
        self,
        region: str,
        name: str,
        kind: SettingKind,
        qualifier: str,
        change: Callable[[Document | None], Document | None],
    ) -> Document | None:
        """Atomically read, transform and write one setting; `change` returns None to delete and
        may raise to abort. Raises FunctionNotFound (name only) if the function is gone."""
        key = (region, name, kind.value, qualifier)
        with self._db.write():
            if (
                self._db.one(
                    "SELECT 1 FROM functions WHERE region = ? AND name = ?", (region, name)
                )
                is None
            ):
                raise FunctionNotFound(name)
            row = self._db.one(
                "SELECT document FROM function_settings "
                "WHERE region = ? AND name = ? AND kind = ? AND qualifier = ?",
                key,
            )
            updated = change(orjson.loads(row[0]) if row else None)
            if updated is None:
                self._db.execute(
                    "DELETE FROM function_settings "
                    "WHERE region = ? AND name = ? AND kind = ? AND qualifier = ?",
                    key,
                )
            else:
                self._db.execute(
                    "INSERT INTO function_settings (region, name, kind, qualifier, document) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (region, name, kind, qualifier) "
                    "DO UPDATE SET document = excluded.document",
                    (*key, orjson.dumps(updated).decode()),
                )
        return updated

    async def delete_qualifier(self, region: str, name: str, qualifier: str) -> None:
        """A version or alias is gone: so are its settings."""
        with self._db.write():
            self._db.execute(
                "DELETE FROM function_settings WHERE region = ? AND name = ? AND qualifier = ?",
                (region, name, qualifier),
            )
