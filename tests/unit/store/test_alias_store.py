"""AliasStore: round trips, atomic read-modify-write with the function's versions, the read
cache and its invalidation, the cascade when the function goes, and FunctionService.resolve
reading aliases and versions from memory on the invoke path."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import uuid
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lamina.clock import SystemClock
from lamina.control.activation import Activator
from lamina.control.code import CodeRepository
from lamina.control.functions import FunctionService
from lamina.errors import FunctionNotFound
from lamina.ids import FunctionRef
from lamina.model.alias import Alias
from lamina.model.function import (
    LATEST,
    CodeRef,
    Function,
    FunctionConfig,
    FunctionVersion,
    State,
    Status,
)
from lamina.store.aliases import AliasStore
from lamina.store.archive import ArchiveLimits
from lamina.store.blobs import CodeBlobStore
from lamina.store.codecache import CodeCache
from lamina.store.database import Database
from lamina.store.protocol import Published
from lamina.store.sqlite import SqliteStore

T = TypeVar("T")
REGION = "us-east-1"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def version(number: str = LATEST) -> FunctionVersion:
    return FunctionVersion(
        number,
        FunctionConfig("python3.11", "app.handler", "arn:aws:iam::000000000000:role/r"),
        CodeRef("ab" * 32, 10, 20),
        Status(State.ACTIVE),
        datetime(2026, 1, 2, tzinfo=UTC),
        str(uuid.uuid4()),
    )


def alias(name: str = "live", target: str = "1", **weights: float) -> Alias:
    return Alias(REGION, "f", name, target, str(uuid.uuid4()), "desc", dict(weights))


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SqliteStore, AliasStore]:
    functions = SqliteStore(tmp_path / "state.db")
    run(functions.create_function(Function(REGION, "f", version())))

    def make(function: Function, previous: FunctionVersion | None, number: int) -> Published:
        return Published(version(str(number)), function.latest)

    for _ in range(2):
        run(functions.publish_version(REGION, "f", make))
    return functions, AliasStore(functions.database)


def put(store: AliasStore, value: Alias) -> Alias | None:
    return run(store.update(REGION, "f", value.name, lambda current, versions: value))


def test_round_trip_preserves_every_field(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    written = alias("blue", "1", **{"2": 0.25})
    put(store, written)
    assert run(store.get(REGION, "f", "blue")) == written
    assert run(store.get(REGION, "f", "green")) is None
    assert run(store.get(REGION, "other", "blue")) is None


def test_change_sees_the_current_alias_and_the_function_versions(
    stores: tuple[SqliteStore, AliasStore],
) -> None:
    _, store = stores
    seen: list[tuple[Alias | None, frozenset[str]]] = []

    def change(current: Alias | None, versions: frozenset[str]) -> Alias:
        seen.append((current, versions))
        return alias()

    run(store.update(REGION, "f", "live", change))
    run(store.update(REGION, "f", "live", change))
    assert seen[0] == (None, frozenset({LATEST, "1", "2"}))
    assert seen[1][0] is not None
    assert seen[1][0].name == "live"


def test_a_change_that_raises_writes_nothing(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    put(store, alias())

    def refuse(current: Alias | None, versions: frozenset[str]) -> Alias:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        run(store.update(REGION, "f", "live", refuse))
    found = run(store.get(REGION, "f", "live"))
    assert found is not None
    assert found.version == "1"


def test_none_deletes(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    put(store, alias())
    assert run(store.update(REGION, "f", "live", lambda current, versions: None)) is None
    assert run(store.get(REGION, "f", "live")) is None


def test_listing_is_by_name(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    for name in ("prod", "beta", "live"):
        put(store, alias(name))
    names = [a.name for a in run(store.of_function(REGION, "f"))]
    assert names == ["beta", "live", "prod"]


def test_unknown_function_is_not_found(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    with pytest.raises(FunctionNotFound):
        run(store.update(REGION, "missing", "live", lambda current, versions: alias()))


def test_reads_are_cached_until_any_write(stores: tuple[SqliteStore, AliasStore]) -> None:
    functions, store = stores
    put(store, alias())
    first = run(store.get(REGION, "f", "live"))
    # Behind the store's back (never done in production): the cache still answers...
    functions.database.execute("DELETE FROM aliases")
    assert run(store.get(REGION, "f", "live")) is first
    # ...until a write through the shared database drops it.
    run(functions.update_function(REGION, "f", lambda f: f))
    assert run(store.get(REGION, "f", "live")) is None


def test_updated_alias_is_read_back(stores: tuple[SqliteStore, AliasStore]) -> None:
    _, store = stores
    first = alias()
    put(store, first)
    assert run(store.get(REGION, "f", "live")) == first
    second = dataclasses.replace(first, version="2", revision_id="r2")
    put(store, second)
    assert run(store.get(REGION, "f", "live")) == second


def test_deleting_the_function_deletes_its_aliases(
    stores: tuple[SqliteStore, AliasStore],
) -> None:
    functions, store = stores
    put(store, alias())
    run(functions.delete_function(REGION, "f"))
    assert run(store.of_function(REGION, "f")) == []
    row = functions.database.one("SELECT COUNT(*) FROM aliases")
    assert row[0] == 0


def test_aliases_survive_reopening(tmp_path: Path, stores: tuple[SqliteStore, AliasStore]) -> None:
    functions, store = stores
    written = alias("blue", "2", **{"1": 0.5})
    put(store, written)
    run(functions.close())
    reopened = AliasStore(SqliteStore(tmp_path / "state.db").database)
    assert run(reopened.get(REGION, "f", "blue")) == written


def test_pick_routes_by_weight() -> None:
    split = alias("a", "1", **{"2": 0.3})
    assert [split.pick(d) for d in (0.0, 0.29, 0.3, 0.99)] == ["2", "2", "1", "1"]
    assert alias("a", "1", **{"2": 0.0}).pick(0.0) == "1"
    assert alias("a", "1", **{"2": 1.0}).pick(0.999999) == "2"
    assert split.references("1")
    assert split.references("2")
    assert not split.references("3")


# --- FunctionService.resolve over these stores: the hot invoke path ---------------------------


class CountingDatabase(Database):
    """Counts the statements run, to prove the invoke path reads memory only."""

    statements = 0

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.statements += 1
        return super().execute(sql, args)

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self.statements += 1
        return super().one(sql, args)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        self.statements += 1
        return super().all(sql, args)


def test_resolving_through_an_alias_runs_no_sql_until_a_write(tmp_path: Path) -> None:
    database = CountingDatabase(tmp_path / "state.db")
    functions = SqliteStore(database)
    aliases = AliasStore(database)
    limits = ArchiveLimits()
    code = CodeRepository(
        CodeBlobStore(tmp_path / "blobs", b"k" * 32), CodeCache(tmp_path / "code", limits), limits
    )
    draws = iter([0.1, 0.9] * 1000)
    service = FunctionService(
        functions,
        code,
        Activator(functions, code, SystemClock()),
        SystemClock(),
        "000000000000",
        aliases=aliases,
        draw=lambda: next(draws),
    )

    def make(function: Function, previous: FunctionVersion | None, number: int) -> Published:
        return Published(version(str(number)), function.latest)

    async def scenario() -> None:
        await functions.create_function(Function(REGION, "f", version()))
        for _ in range(2):
            await functions.publish_version(REGION, "f", make)
        split = alias("live", "1", **{"2": 0.5})
        await aliases.update(REGION, "f", "live", lambda current, versions: split)
        ref = FunctionRef(REGION, "000000000000", "f", "live")
        for _ in range(2):  # warm every cache: function, alias, both versions
            await service.resolve(ref)
        before = database.statements
        ran = [(await service.resolve(ref))[1].version for _ in range(100)]
        assert database.statements == before
        assert ran == ["2", "1"] * 50  # draw 0.1 < 0.5 runs version 2, draw 0.9 version 1
        described = [(await service.describe(ref))[1].version for _ in range(10)]
        assert described == ["1"] * 10  # reads name the primary, never a draw
        await aliases.update(REGION, "f", "live", lambda current, versions: alias("live", "2"))
        assert (await service.resolve(ref))[1].version == "2"
        assert database.statements > before

    asyncio.run(scenario())
